/**
 * `tsx scripts/with-postgres.ts <command...>`: runs the command (the test run) with one throwaway
 * PostgreSQL cluster that every FerretDB it starts shares, each in a database of its own; stops and
 * removes the cluster afterwards, and exits with the command's status.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chooseBackend } from './ferretdb-backend.js'
import { startCluster, type PostgresCluster } from './postgres.js'

const [command, ...args] = process.argv.slice(2)
if (!command) throw new Error('usage: tsx scripts/with-postgres.ts <command...>')

const choice = chooseBackend()
// Every test process takes the same decision, without a warning of its own.
const env: NodeJS.ProcessEnv = { ...process.env, FERRETDB_BACKEND: choice.backend }
let cluster: PostgresCluster | undefined
let dir: string | undefined
if (choice.backend === 'pg') {
  dir = mkdtempSync(join(tmpdir(), 'postgres-tests-'))
  cluster = await startCluster({ binDir: choice.binDir, dir: join(dir, 'postgres'), durable: false })
  Object.assign(env, { POSTGRES_BIN_DIR: choice.binDir, EMBEDDED_POSTGRES_SOCKET: cluster.socketDir })
}

const child = spawn(command, args, { stdio: 'inherit', env })
// A Ctrl-C reaches the command too (one process group); either way this process waits for it to
// end, then cleans up.
process.on('SIGINT', () => {})
process.on('SIGTERM', () => child.kill('SIGTERM'))
const status = await new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))))
await cluster?.stop()
if (dir) rmSync(dir, { recursive: true, force: true })
process.exit(status)
