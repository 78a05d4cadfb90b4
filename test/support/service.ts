/**
 * The real service process (server.ts), and a small HTTP client for it. Node runs server.ts with
 * tsx's loader in one process, so a signal (SIGKILL included) reaches the server itself; the `tsx`
 * command would put a wrapper process in between. Autoload is told that it may load TypeScript,
 * which it otherwise detects from the wrapper's preload.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'node:http'
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { TEST_SECRET } from './app.js'
import { databaseUrl } from './database.js'
import { until } from './until.js'
import { PASSWORD, uniqueEmail } from './users.js'

/** server.ts on this file's database server with `env` over the test settings; killed when `t` ends if still running. */
async function spawnServer (t: Test, env: Record<string, string>, preload?: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...(preload ? ['--import', preload] : []), 'server.ts'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      MONGODB_URL: await databaseUrl(),
      SECRET_KEY: TEST_SECRET,
      PORT: '0',
      RATE_LIMIT_ENABLED: 'false',
      // Load shedding has its own test: on a busy test machine the event loop can stall past a second
      // while an app compiles its schemas, and every request after would get a 503.
      PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0',
      FASTIFY_AUTOLOAD_TYPESCRIPT: '1',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe', ...(preload ? ['ipc' as const] : [])]
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return child
}

export interface Service {
  child: ChildProcess
  port: number
  /** Resolves with the exit code (null when killed by a signal) once the process has ended. */
  exited: Promise<number | null>
  output (): string
  /** How many log lines so far carry this message. */
  logged (msg: string): number
}

/** The service, once it listens. */
export async function startService (t: Test, env: Record<string, string>): Promise<Service> {
  const child = await spawnServer(t, env)
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  let output = ''
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = output.match(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/)
      if (match) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    })
    child.once('exit', () => reject(new Error(`server exited:\n${output}`)))
  })
  const logged = (msg: string) => output.split('\n').filter((line) => line.includes(`"msg":${JSON.stringify(msg)}`)).length
  return { child, port, exited, output: () => output, logged }
}

/**
 * The service run to its end on a database of its own, optionally with a preloaded module and an
 * IPC channel (`whenListening` may then send it messages); its exit code and output.
 */
export async function runServer (t: Test, env: Record<string, string>, options: { preload?: string, whenListening?: (send: (m: string) => void) => void } = {}) {
  const child = await spawnServer(t, { DATABASE_NAME: `test_review_${randomBytes(4).toString('hex')}`, ...env }, options.preload)
  let output = ''
  let acted = false
  const onData = (chunk: Buffer) => {
    output += chunk.toString()
    if (!acted && options.whenListening && /Server listening at/.test(output)) {
      acted = true
      options.whenListening((m) => child.send(m))
    }
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(timer)
  return { code, output }
}

export interface Answer {
  status: number
  body: string
  json (): any
}

/** One request on its own connection; JSON in, text out. */
export function call (port: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body)
    const req = request({
      host: '127.0.0.1', port, method, path, agent: false, headers: { ...(data ? { 'content-type': 'application/json' } : {}), ...headers }
    }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, json: () => JSON.parse(text) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(data)
  })
}

/** Waits until /health/ready answers 200: the database is reached and its setup (the startup sweep too) is done. */
export async function whenReady (port: number, ms = 30_000) {
  await until(async () => (await call(port, 'GET', '/health/ready').catch(() => ({ status: 0 }))).status === 200, ms, 'the service to be ready')
}

/** Registers and logs in a new user over HTTP; returns its `authorization` header. */
export async function signUpOver (port: number) {
  const email = uniqueEmail('fault')
  const registered = await call(port, 'POST', '/auth/register', { email, password: PASSWORD })
  if (registered.status !== 200) throw new Error(`register failed: ${registered.status} ${registered.body}`)
  const login = await call(port, 'POST', '/auth/login', { username: email, password: PASSWORD })
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.body}`)
  return { authorization: `Bearer ${login.json().access_token}` }
}
