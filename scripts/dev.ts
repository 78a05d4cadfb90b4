/**
 * `npm run dev`: the service on the embedded development database. With MONGODB_URL set (in the
 * environment or .env) that database is used instead and nothing is started.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { startFerretdb } from './ferretdb.js'

if (existsSync('.env')) process.loadEnvFile('.env')
process.env.NODE_ENV ??= 'development'

if (!process.env.MONGODB_URL) {
  const db = await startFerretdb({ dataDir: join(process.cwd(), '.data', 'ferretdb') })
  process.env.MONGODB_URL = db.url
  console.error(`Embedded FerretDB on ${db.url} (data in .data/ferretdb)`)
  process.on('exit', () => { db.process.kill('SIGTERM') })
  db.process.once('exit', (code) => {
    console.error(`The embedded database stopped (exit ${code}); stopping the service.`)
    process.kill(process.pid, 'SIGTERM')
  })
}

await import('../server.js')
