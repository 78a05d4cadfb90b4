/**
 * The development and test database: FerretDB 1.24 (installed with Go when missing) on a free
 * loopback port, over PostgreSQL from this machine (scripts/postgres.ts), or over SQLite where there
 * is no PostgreSQL or FERRETDB_BACKEND=sqlite asks for it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { chooseBackend, type Backend } from './ferretdb-backend.js'
import { databases, startCluster, DEFAULT_DATABASE, type PostgresCluster } from './postgres.js'
import { cpuMs } from './process-cpu.js'
import { launch } from './run-as.js'

export const FERRETDB_VERSION = 'v1.24.2'
const MODULE = 'github.com/FerretDB/FerretDB'

function goBin (): string {
  return join(execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim(), 'bin')
}

/** The ferretdb binary to use: FERRETDB_BIN, else the one in Go's bin folder (built when missing). */
export function ferretdbPath (): string {
  if (process.env.FERRETDB_BIN) return process.env.FERRETDB_BIN
  return join(goBin(), 'ferretdb')
}

function works (bin: string): boolean {
  try {
    return execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes(FERRETDB_VERSION)
  } catch {
    return false
  }
}

/**
 * `go install …@v1.24.2` builds a binary that panics at start: the module archive lacks
 * build/version/version.txt, which FerretDB's release builds generate. So build from the module
 * source with that file written in.
 */
export function installFerretdb (): string {
  const bin = ferretdbPath()
  if (works(bin)) return bin
  console.error(`Installing FerretDB ${FERRETDB_VERSION} with Go (about two minutes, once)...`)
  const info = JSON.parse(execFileSync('go', ['mod', 'download', '-json', `${MODULE}@${FERRETDB_VERSION}`], { encoding: 'utf8' })) as { Dir: string }
  const source = mkdtempSync(join(tmpdir(), 'ferretdb-src-'))
  try {
    cpSync(info.Dir, source, { recursive: true })
    execFileSync('chmod', ['-R', 'u+w', source])
    writeFileSync(join(source, 'build/version/version.txt'), `${FERRETDB_VERSION}\n`)
    mkdirSync(join(bin, '..'), { recursive: true })
    execFileSync('go', ['build', '-o', bin, './cmd/ferretdb'], {
      cwd: source, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' }
    })
    chmodSync(bin, 0o755)
  } finally {
    rmSync(source, { recursive: true, force: true })
  }
  if (!works(bin)) throw new Error(`FerretDB was built at ${bin} but does not run`)
  return bin
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')))
    })
  })
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

export interface RunningFerretdb {
  url: string
  port: number
  process: ChildProcess
  dataDir: string
  backend: Backend
  /** CPU time used so far by FerretDB and the PostgreSQL cluster it started (every process of it), in ms. */
  cpuMs (): number
  stop (): Promise<void>
  /** For 'exit' handlers: signals FerretDB and the cluster it started to stop, without waiting. */
  kill (): void
}

export interface FerretdbOptions {
  /**
   * What survives a restart: the PostgreSQL cluster in `dataDir/postgres`, FerretDB's state (and its
   * SQLite files) in `dataDir/ferretdb`. Without it, a throwaway folder removed on stop.
   */
  dataDir?: string
  port?: number
  /** PostgreSQL keeps fsync and synchronous commits on; the default with a `dataDir`. */
  durable?: boolean
}

/** The FerretDB processes of this process that use each cluster: the last one to stop stops the cluster. */
const clusterUsers = new Map<PostgresCluster, Set<ChildProcess>>()
const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null

/** A database of its own in the cluster a test run shares (scripts/with-postgres.ts), dropped afterwards. */
async function sharedClusterDatabase (binDir: string, socketDir: string) {
  const shared = databases(binDir, socketDir)
  const name = `ferretdb_${randomBytes(6).toString('hex')}`
  await shared.createDatabase(name)
  return {
    url: shared.url(name),
    cpuMs: () => 0,
    kill: () => {},
    use: () => {},
    release: async () => await shared.dropDatabase(name).catch(() => {})
  }
}

/** Where FerretDB keeps its data on PostgreSQL, and what to do once FerretDB has stopped. */
async function postgresqlFor (binDir: string, dataDir: string, durable: boolean) {
  const cluster = await startCluster({ binDir, dir: join(dataDir, 'postgres'), durable })
  const users = clusterUsers.get(cluster) ?? new Set()
  if (!clusterUsers.has(cluster)) {
    clusterUsers.set(cluster, users)
    // FerretDB without its cluster only fails: end it too, so that its users see it gone.
    cluster.process.once('exit', () => { for (const child of users) if (running(child)) child.kill('SIGTERM') })
  }
  return {
    url: cluster.url(DEFAULT_DATABASE),
    cpuMs: () => cpuMs(cluster.process.pid, true),
    kill: () => cluster.kill(),
    use: (child: ChildProcess) => users.add(child),
    release: async (child: ChildProcess) => {
      users.delete(child)
      if ([...users].some(running)) return
      clusterUsers.delete(cluster)
      await cluster.stop()
    }
  }
}

/**
 * Starts FerretDB on a free loopback port (or `port`). On PostgreSQL, a restart with the same
 * `dataDir` finds the data again, and reuses the cluster when this process still runs it.
 */
export async function startFerretdb (options: FerretdbOptions = {}): Promise<RunningFerretdb> {
  const bin = installFerretdb()
  const choice = chooseBackend()
  const throwaway = options.dataDir === undefined
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'ferretdb-data-'))
  const stateDir = join(dataDir, 'ferretdb')
  mkdirSync(stateDir, { recursive: true })
  const shared = throwaway ? process.env.EMBEDDED_POSTGRES_SOCKET : undefined
  const postgresql = choice.backend === 'sqlite'
    ? undefined
    : await (shared ? sharedClusterDatabase(choice.binDir, shared) : postgresqlFor(choice.binDir, dataDir, options.durable ?? !throwaway))
      .catch((error: unknown) => {
        if (throwaway) rmSync(dataDir, { recursive: true, force: true })
        throw error
      })
  const port = options.port ?? await freePort()
  const [file, args] = launch(bin, [
    ...(postgresql ? ['--handler=postgresql', `--postgresql-url=${postgresql.url}`] : ['--handler=sqlite', `--sqlite-url=file:${stateDir}/`]),
    `--state-dir=${stateDir}`,
    `--listen-addr=127.0.0.1:${port}`,
    '--debug-addr=-',
    '--telemetry=disable',
    '--log-level=error'
  ], { deathSignal: 'SIGTERM' })
  // Its own log: FerretDB logs every refused duplicate key (which claims rely on) as an error.
  const logPath = join(stateDir, 'ferretdb.log')
  const log = openSync(logPath, 'a')
  // Its own process group, like the cluster: a Ctrl-C reaches this process, which stops FerretDB after the service.
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', log], detached: true })
  closeSync(log)
  postgresql?.use(child)

  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let stopping: Promise<void> | undefined
  const stop = async () => {
    stopping ??= (async () => {
      if (running(child)) child.kill('SIGTERM')
      await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))])
      await exited
      await postgresql?.release(child)
      if (throwaway) rmSync(dataDir, { recursive: true, force: true })
    })()
    await stopping
  }

  const deadline = Date.now() + 15_000
  while (!await accepts(port)) {
    if (!running(child) || Date.now() > deadline) {
      const tail = readFileSync(logPath, 'utf8').trim().split('\n').slice(-5).join(' | ')
      await stop()
      throw new Error(`FerretDB did not start on port ${port}${tail ? `: ${tail}` : ''}`)
    }
    await sleep(50)
  }
  return {
    url: `mongodb://127.0.0.1:${port}/`,
    port,
    process: child,
    dataDir,
    backend: choice.backend,
    cpuMs: () => cpuMs(child.pid) + (postgresql?.cpuMs() ?? 0),
    stop,
    kill: () => {
      if (running(child)) child.kill('SIGTERM')
      postgresql?.kill()
    }
  }
}

// `tsx scripts/ferretdb.ts install` installs without starting (CI, pretest).
if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === 'install') {
  console.log(installFerretdb())
}
