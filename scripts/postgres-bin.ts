/**
 * Finds the machine's PostgreSQL server binaries (initdb, postgres): POSTGRES_BIN_DIR when set,
 * else `pg_config --bindir`, else the newest /usr/lib/postgresql/<version>/bin (Debian, Ubuntu),
 * else the folder of `initdb` on PATH. `tsx scripts/postgres-bin.ts` prints the folder, or exits 1.
 */
import { execFileSync } from 'node:child_process'
import { accessSync, constants, readdirSync, realpathSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'

const DEBIAN_ROOT = '/usr/lib/postgresql'

function hasServer (dir: string): boolean {
  try {
    accessSync(join(dir, 'initdb'), constants.X_OK)
    accessSync(join(dir, 'postgres'), constants.X_OK)
    return true
  } catch {
    return false
  }
}

function pgConfigBinDir (): string | undefined {
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}

function newestDebianBinDir (): string | undefined {
  let versions: string[]
  try {
    versions = readdirSync(DEBIAN_ROOT)
  } catch {
    return undefined
  }
  const newest = versions.filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a))
    .map((v) => join(DEBIAN_ROOT, v, 'bin')).find(hasServer)
  return newest
}

function initdbOnPath (): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    try {
      // Resolves links such as /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb.
      const initdb = realpathSync(join(dir, 'initdb'))
      if (hasServer(dirname(initdb))) return dirname(initdb)
    } catch {}
  }
  return undefined
}

/** The folder holding initdb and postgres, or undefined when this machine has no PostgreSQL server. */
export function postgresBinDir (): string | undefined {
  const configured = process.env.POSTGRES_BIN_DIR
  if (configured) {
    if (!hasServer(configured)) throw new Error(`POSTGRES_BIN_DIR=${configured} has no initdb and postgres`)
    return configured
  }
  const fromPgConfig = pgConfigBinDir()
  if (fromPgConfig && hasServer(fromPgConfig)) return fromPgConfig
  return newestDebianBinDir() ?? initdbOnPath()
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = postgresBinDir()
  if (!dir) process.exit(1)
  console.log(dir)
}
