/**
 * A PostgreSQL cluster for FerretDB: created with initdb when its folder is empty and run as a child
 * of this process, reachable only through a Unix socket (no TCP), with trust authentication. A
 * throwaway cluster trades crash safety for speed (fsync off).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { INDEX_TWINS_SETTINGS, INDEX_TWINS_SQL } from './postgres-indexes.js'
import { launch, postgresOwner } from './run-as.js'

const run = promisify(execFile)
const SUPERUSER = 'postgres'
/** The database created with a cluster; FerretDB keeps each MongoDB database in a schema of it. */
export const DEFAULT_DATABASE = 'ferretdb'

export interface ClusterOptions {
  binDir: string
  /** The cluster's folder (PGDATA); created and initialised when missing or empty. */
  dir: string
  /** Keep fsync and synchronous commits on (development data, benchmarks); off for throwaway clusters. */
  durable: boolean
}

/** The databases of a running cluster, reached through its socket folder. */
export interface PostgresDatabases {
  socketDir: string
  /** A URL for FerretDB's --postgresql-url. */
  url (database: string): string
  createDatabase (name: string): Promise<void>
  dropDatabase (name: string): Promise<void>
}

export interface PostgresCluster extends PostgresDatabases {
  dir: string
  process: ChildProcess
  stop (): Promise<void>
  /** For 'exit' handlers: asks for a fast shutdown without waiting, and removes the socket folder. */
  kill (): void
}

export function databases (binDir: string, socketDir: string): PostgresDatabases {
  const client = ['-h', socketDir, '-U', SUPERUSER]
  return {
    socketDir,
    url: (database) => `postgres://${SUPERUSER}@/${database}?host=${encodeURIComponent(socketDir)}`,
    createDatabase: async (name) => await runTool(binDir, 'createdb', [...client, name]),
    dropDatabase: async (name) => await runTool(binDir, 'dropdb', [...client, '--force', '--if-exists', name])
  }
}

function ownedDir (path: string, temporary = false): string {
  const dir = temporary ? mkdtempSync(path) : path
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const owner = postgresOwner()
  if (owner) chownSync(dir, owner.uid, owner.gid)
  return dir
}

/** Runs one of PostgreSQL's programs as the cluster's owner; a failure throws with the end of its output. */
async function runTool (binDir: string, tool: string, args: string[]) {
  const [file, argv] = launch(join(binDir, tool), args, { asPostgres: true })
  try {
    await run(file, argv, { env: { ...process.env, LC_ALL: 'C' } })
  } catch (error) {
    const { stderr = '', stdout = '' } = error as { stderr?: string, stdout?: string }
    throw new Error(`${tool} ${args.join(' ')} failed: ${(stderr || stdout).trim().split('\n').slice(-5).join(' | ')}`)
  }
}

async function initialise (options: ClusterOptions) {
  if (existsSync(join(options.dir, 'PG_VERSION'))) return false
  ownedDir(options.dir)
  if (readdirSync(options.dir).length > 0) throw new Error(`${options.dir} is neither empty nor a PostgreSQL cluster`)
  await runTool(options.binDir, 'initdb', ['-D', options.dir, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8',
    '--locale=C', '--no-instructions', ...(options.durable ? [] : ['--no-sync'])])
  return true
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * After a crash, postmaster.pid names a process that is gone, or by now an unrelated one, which
 * would make PostgreSQL refuse to start. A postmaster still running in the folder is an error.
 */
function clearStalePidFile (dir: string) {
  const file = join(dir, 'postmaster.pid')
  let pid: number
  try {
    pid = Number(readFileSync(file, 'utf8').split('\n', 1)[0])
  } catch {
    return
  }
  let running = pid > 0 && alive(pid)
  if (running && existsSync('/proc/self/cwd')) {
    try {
      running = realpathSync(`/proc/${pid}/cwd`) === realpathSync(dir)
    } catch {
      running = false
    }
  }
  if (running) throw new Error(`PostgreSQL (pid ${pid}) is already running in ${dir}; stop it first (another npm run dev?)`)
  rmSync(file, { force: true })
}

async function ready (binDir: string, socketDir: string, child: ChildProcess, log: () => string) {
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`PostgreSQL exited at start: ${log()}`)
    try {
      await run(join(binDir, 'pg_isready'), ['-q', '-h', socketDir, '-U', SUPERUSER])
      return
    } catch {}
    if (Date.now() > deadline) throw new Error(`PostgreSQL did not accept connections within 30 s: ${log()}`)
    await sleep(50)
  }
}

const running = new Map<string, Promise<PostgresCluster>>()

/** Starts the cluster in `dir`, or returns the one this process already runs there. */
export async function startCluster (options: ClusterOptions): Promise<PostgresCluster> {
  const key = resolve(options.dir)
  const existing = running.get(key)
  if (existing) return await existing
  const starting = boot(options)
  running.set(key, starting)
  const forget = () => { if (running.get(key) === starting) running.delete(key) }
  starting.then((cluster) => cluster.process.once('exit', forget), forget)
  return await starting
}

async function boot (options: ClusterOptions): Promise<PostgresCluster> {
  const { binDir, dir, durable } = options
  const created = await initialise(options)
  clearStalePidFile(dir)
  // The socket's path has a length limit (107 bytes on Linux); in the cluster's folder when it fits.
  const socketDir = resolve(dir).length < 80 ? resolve(dir) : ownedDir(join(tmpdir(), 'pg-'), true)
  const ownSocketDir = socketDir !== resolve(dir)
  const settings = [
    'listen_addresses=', `unix_socket_directories=${socketDir}`, 'max_connections=200', ...INDEX_TWINS_SETTINGS,
    ...(durable ? [] : ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'])
  ]
  const [file, args] = launch(join(binDir, 'postgres'), ['-D', dir, ...settings.flatMap((s) => ['-c', s])],
    { asPostgres: true, deathSignal: 'SIGINT' })
  // Its own process group: a Ctrl-C in the terminal reaches this process, which stops the cluster last.
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { ...process.env, LC_ALL: 'C' } })
  const lines: string[] = []
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    lines.push(...chunk.split('\n').filter(Boolean))
    lines.splice(0, lines.length - 10)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))

  let stopping: Promise<void> | undefined
  const cluster: PostgresCluster = {
    ...databases(binDir, socketDir),
    dir,
    process: child,
    stop: async () => {
      stopping ??= (async () => {
        // SIGINT is PostgreSQL's fast shutdown (ends sessions, checkpoints); SIGQUIT the immediate one.
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
        await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGQUIT'))])
        await Promise.race([exited, sleep(5_000).then(() => child.kill('SIGKILL'))])
        await exited
        if (ownSocketDir) rmSync(socketDir, { recursive: true, force: true })
      })()
      await stopping
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
      // PostgreSQL shuts down cleanly without it (a socket it cannot remove is not an error).
      if (ownSocketDir) rmSync(socketDir, { recursive: true, force: true })
    }
  }
  try {
    await ready(binDir, socketDir, child, () => lines.join(' | '))
    // In template1 first, so every database created afterwards has the trigger (see postgres-indexes.ts).
    await runTool(binDir, 'psql', ['-h', socketDir, '-U', SUPERUSER, '-d', 'template1', '-q', '-v', 'ON_ERROR_STOP=1', '-c', INDEX_TWINS_SQL])
    if (created) await cluster.createDatabase(DEFAULT_DATABASE)
    else await runTool(binDir, 'psql', ['-h', socketDir, '-U', SUPERUSER, '-d', DEFAULT_DATABASE, '-q', '-v', 'ON_ERROR_STOP=1', '-c', INDEX_TWINS_SQL])
  } catch (error) {
    await cluster.stop()
    throw error
  }
  return cluster
}
