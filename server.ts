import { existsSync } from 'node:fs'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError } from './plugins/external/env.js'

if (existsSync('.env')) process.loadEnvFile('.env')

let app: Awaited<ReturnType<typeof buildApp>>
try {
  // Readable lines for a person at a terminal; JSON lines for everything else (and always in production).
  app = await buildApp(process.env, { pretty: process.stdout.isTTY === true && process.env.NODE_ENV === 'development' })
  await app.ready()
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error)
  process.exit(1)
}

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an unexpected error')
  else app.log.info({ signal }, 'closing')
  await app.close()
})

await app.listen({ host: app.config.HOST, port: app.config.PORT })
