/**
 * Which backend FerretDB runs on: PostgreSQL when this machine has it, else SQLite with one warning.
 * FERRETDB_BACKEND=pg|sqlite decides instead (pg where PostgreSQL is missing is an error).
 */
import { postgresBinDir } from './postgres-bin.js'

export type Backend = 'pg' | 'sqlite'
export type BackendChoice = { backend: 'pg', binDir: string } | { backend: 'sqlite' }

const INSTALL = 'install PostgreSQL (apt-get install postgresql, brew install postgresql) or set POSTGRES_BIN_DIR to the folder holding its initdb'
let warned = false

export function chooseBackend (): BackendChoice {
  const asked = process.env.FERRETDB_BACKEND || undefined
  if (asked !== undefined && asked !== 'pg' && asked !== 'sqlite') throw new Error(`FERRETDB_BACKEND is pg or sqlite, not "${asked}"`)
  if (asked === 'sqlite') return { backend: 'sqlite' }
  const binDir = postgresBinDir()
  if (binDir) return { backend: 'pg', binDir }
  if (asked === 'pg') throw new Error(`FERRETDB_BACKEND=pg, but this machine has no PostgreSQL server: ${INSTALL}`)
  if (!warned) console.error(`Warning: no PostgreSQL server found, so FerretDB runs on SQLite; for PostgreSQL underneath, ${INSTALL}.`)
  warned = true
  return { backend: 'sqlite' }
}
