/**
 * `npm run dev`: the service on the embedded development database (FerretDB over PostgreSQL, data in
 * ./.data). With MONGODB_URL set (in the environment or .env) that database is used instead and
 * nothing is started.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { startFerretdb } from './ferretdb.js'

if (existsSync('.env')) process.loadEnvFile('.env')
process.env.NODE_ENV ??= 'development'

if (!process.env.MONGODB_URL) {
  const db = await startFerretdb({ dataDir: join(process.cwd(), '.data') }).catch((error: Error) => {
    console.error(`The embedded database did not start: ${error.message}`)
    process.exit(1)
  })
  process.env.MONGODB_URL = db.url
  console.error(`Embedded FerretDB on ${db.url}, over ${db.backend === 'pg' ? 'PostgreSQL (data in .data/postgres)' : 'SQLite (data in .data/ferretdb)'}`)
  // The service closes first (close-with-grace, then exit); the database stops after it.
  process.on('exit', () => db.kill())
  db.process.once('exit', (code) => {
    console.error(`The embedded database stopped (exit ${code}); stopping the service.`)
    process.kill(process.pid, 'SIGTERM')
  })
}

await import('../server.js')
