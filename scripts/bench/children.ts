/**
 * The bench's child processes (scripts/bench/server.ts, scripts/bench/wire-proxy.ts) and the
 * database, and the guarantee that none outlives the run: cleanup on return, on Ctrl-C, past the
 * time budget, and a SIGKILL on exit as the last resort.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { root, settings } from './settings.js'

export interface Child {
  name: string
  proc: ChildProcess
  pid: number
  port: number
  logPath?: string
  stop (): Promise<void>
}

/** The embedded database; `kill` (PostgreSQL-backed scripts/ferretdb.ts) also signals the cluster it started. */
interface Stoppable { process: ChildProcess, stop (): Promise<void>, kill? (): void }

const children = new Set<Child>()
let database: Stoppable | null = null
let cleaningUp: Promise<void> | null = null

export const workDir = mkdtempSync(join(tmpdir(), 'bench-'))

/** The database started for the run, stopped last. */
export function ownDatabase (db: Stoppable): void {
  database = db
}

export async function cleanup (): Promise<void> {
  cleaningUp ??= (async () => {
    await Promise.allSettled([...children].map(async (child) => await child.stop()))
    if (database) await database.stop().catch(() => {})
    rmSync(workDir, { recursive: true, force: true })
  })()
  await cleaningUp
}

/** Signals, the budget watchdog and the exit hook; call once at start. */
export function guardChildren (): void {
  process.on('exit', () => {
    for (const child of children) if (child.proc.exitCode === null) child.proc.kill('SIGKILL')
    if (database?.kill) database.kill()
    else if (database?.process.exitCode === null) database.process.kill('SIGKILL')
  })
  // Ctrl-C reaches this process twice (from the terminal and relayed by the tsx wrapper): the first
  // one starts the cleanup, later ones are ignored so they cannot cut it short (it is time-bounded).
  let interrupted = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) return
      interrupted = true
      console.error(`\n${signal}: stopping the children...`)
      cleanup().then(() => process.exit(130), () => process.exit(130))
    })
  }
  setTimeout(() => {
    console.error(`\nThe benchmark ran past its ${settings.budgetMs / 1000} s budget; stopping.`)
    cleanup().then(() => process.exit(1), () => process.exit(1))
  }, settings.budgetMs).unref()
}

function baseEnv (): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[name]) env[name] = process.env[name]!
  return env
}

export type ChildKind = 'bare' | 'api' | 'upstream' | 'proxy'

/** Starts a child and waits for its `{ type: 'listening', port }` message (30 s at most). */
export async function startChild (name: string, kind: ChildKind, env: Record<string, string>): Promise<Child> {
  const logPath = kind === 'api' ? join(settings.logDir || workDir, `${name}.log`) : undefined
  const out = logPath ? openSync(logPath, 'a') : 'ignore'
  const entry = kind === 'proxy' ? join(root, 'scripts', 'bench', 'wire-proxy.ts') : join(root, 'scripts', 'bench', 'server.ts')
  const args = ['--import', 'tsx', entry, kind]
  if (kind === 'api') args.unshift('--expose-gc') // only used when the bench asks for a memory probe
  if (settings.cpuProfDir && kind === 'api') args.unshift('--cpu-prof', `--cpu-prof-dir=${join(settings.cpuProfDir, name)}`)
  const proc = spawn(process.execPath, args, {
    cwd: root,
    // `--import tsx` is not a preload @fastify/autoload recognises; this tells it .ts plugins load.
    env: { ...baseEnv(), FASTIFY_AUTOLOAD_TYPESCRIPT: '1', ...env },
    stdio: ['ignore', out, 'inherit', 'ipc']
  })
  if (typeof out === 'number') closeSync(out)
  proc.on('error', (error) => console.error(`${name}: ${error.message}`))
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  let stopping: Promise<void> | null = null
  const child: Child = {
    name,
    proc,
    pid: proc.pid ?? 0,
    port: 0,
    logPath,
    async stop () {
      stopping ??= (async () => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
        if (await Promise.race([exited, sleep(8000, 'timeout')]) === 'timeout') {
          proc.kill('SIGKILL')
          await exited
        }
        children.delete(child)
      })()
      await stopping
    }
  }
  children.add(child)
  child.port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000)
    const onMessage = (message: { type?: string, port?: number }) => {
      if (message?.type !== 'listening') return
      proc.off('message', onMessage)
      clearTimeout(timer)
      resolve(message.port ?? 0)
    }
    proc.on('message', onMessage)
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited with ${code} before listening`)) })
  })
  if (!child.port) throw new Error(`${name} reported no port`)
  return child
}

/** Sends `{ type }` to a child and resolves with its answer of the same type, or null after 5 s. */
export async function ask<T> (child: Child, type: string): Promise<T | null> {
  return await new Promise((resolve) => {
    const done = (value: T | null) => { clearTimeout(timer); child.proc.off('message', onMessage); resolve(value) }
    const timer = setTimeout(() => done(null), 5000)
    const onMessage = (message: T & { type?: string }) => { if (message?.type === type) done(message) }
    child.proc.on('message', onMessage)
    try {
      child.proc.send({ type }, (error) => { if (error) done(null) })
    } catch {
      done(null)
    }
  })
}
