/**
 * `tsx scripts/with-postgres.ts <command...>`: runs the command (the test run) with one throwaway
 * PostgreSQL cluster that every FerretDB it starts shares, each in a database of its own; stops and
 * removes the cluster afterwards, and exits with the command's status.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chooseBackend, type BackendChoice } from './ferretdb-backend.js'
import { startCluster, type PostgresCluster } from './postgres.js'

const [command, ...args] = process.argv.slice(2)
if (!command) throw new Error('usage: tsx scripts/with-postgres.ts <command...>')

let choice: BackendChoice
try {
  choice = chooseBackend()
} catch (error) {
  console.error((error as Error).message)
  process.exit(1)
}
// Every test process takes the same decision, without a warning of its own.
const env: NodeJS.ProcessEnv = { ...process.env, FERRETDB_BACKEND: choice.backend }
const dir = mkdtempSync(join(tmpdir(), 'postgres-tests-'))
let cluster: PostgresCluster | undefined
let status = 1
try {
  if (choice.backend === 'pg') {
    cluster = await startCluster({ binDir: choice.binDir, dir: join(dir, 'postgres'), durable: false })
    Object.assign(env, { POSTGRES_BIN_DIR: choice.binDir, EMBEDDED_POSTGRES_SOCKET: cluster.socketDir })
  }
  const child = spawn(command, args, { stdio: 'inherit', env })
  // A Ctrl-C reaches the command too (one process group); either way this process waits for it to
  // end, then cleans up.
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => child.kill('SIGTERM'))
  status = await new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))))
} finally {
  await cluster?.stop()
  rmSync(dir, { recursive: true, force: true })
}
process.exit(status)
