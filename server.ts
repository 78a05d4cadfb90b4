import { existsSync } from 'node:fs'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError } from './plugins/external/env.js'

if (existsSync('.env')) process.loadEnvFile('.env')

const app = await buildApp(process.env)

try {
  await app.ready()
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message)
  } else {
    app.log.fatal({ err: error }, 'could not start')
  }
  process.exit(1)
}

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an unexpected error')
  else app.log.info({ signal }, 'closing')
  await app.close()
})

await app.listen({ host: app.config.HOST, port: app.config.PORT })
