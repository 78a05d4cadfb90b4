/**
 * The development and test database: FerretDB 1.24 on SQLite, installed with Go when missing and
 * started on a free loopback port with its own data folder.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

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
  stop (): Promise<void>
}

/** Starts FerretDB on a free loopback port; `dataDir` defaults to a throwaway folder removed on stop. */
export async function startFerretdb (options: { dataDir?: string, port?: number } = {}): Promise<RunningFerretdb> {
  const bin = installFerretdb()
  const throwaway = options.dataDir === undefined
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'ferretdb-data-'))
  mkdirSync(dataDir, { recursive: true })
  const port = options.port ?? await freePort()
  const child = spawn(bin, [
    '--handler=sqlite',
    `--sqlite-url=file:${dataDir}/`,
    `--state-dir=${dataDir}`,
    `--listen-addr=127.0.0.1:${port}`,
    '--debug-addr=-',
    '--telemetry=disable',
    '--log-level=error'
  ], { stdio: ['ignore', 'ignore', 'inherit'] })

  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))])
    if (throwaway) rmSync(dataDir, { recursive: true, force: true })
  }

  const deadline = Date.now() + 15_000
  while (!await accepts(port)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop()
      throw new Error(`FerretDB did not start on port ${port}`)
    }
    await sleep(50)
  }
  return { url: `mongodb://127.0.0.1:${port}/`, port, process: child, dataDir, stop }
}

// `tsx scripts/ferretdb.ts install` installs without starting (CI, pretest).
if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === 'install') {
  console.log(installFerretdb())
}
