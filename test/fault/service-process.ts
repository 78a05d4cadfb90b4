/**
 * The real service process (server.ts) for fault tests, and a small HTTP client for it. Node runs
 * server.ts with tsx's loader in one process, so a signal (SIGKILL included) reaches the server
 * itself; the `tsx` command would put a wrapper process in between. Autoload is told that it may
 * load TypeScript, which it otherwise detects from the wrapper's preload.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request, type IncomingMessage } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { databaseUrl, PASSWORD, TEST_SECRET, uniqueEmail } from '../helper.js'

export interface Service {
  child: ChildProcess
  port: number
  /** Resolves with the exit code (null when killed by a signal) once the process has ended. */
  exited: Promise<number | null>
  output (): string
  /** How many log lines so far carry this message. */
  logged (msg: string): number
}

export async function startService (t: Test, env: Record<string, string>): Promise<Service> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      MONGODB_URL: await databaseUrl(),
      SECRET_KEY: TEST_SECRET,
      PORT: '0',
      RATE_LIMIT_ENABLED: 'false',
      FASTIFY_AUTOLOAD_TYPESCRIPT: '1',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
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
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if ((await call(port, 'GET', '/health/ready').catch(() => ({ status: 0 }))).status === 200) return
    await sleep(100)
  }
  throw new Error('the service did not become ready')
}

/** Registers and logs in a new user over HTTP; returns its `authorization` header. */
export async function signUpOver (port: number) {
  const email = uniqueEmail('fault')
  const registered = await call(port, 'POST', '/auth/register', { email, password: PASSWORD })
  if (registered.status !== 201) throw new Error(`register failed: ${registered.status} ${registered.body}`)
  const login = await call(port, 'POST', '/auth/login', { username: email, password: PASSWORD })
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.body}`)
  return { authorization: `Bearer ${login.json().access_token}` }
}

export interface OpenStream {
  /** Data of every complete event so far, with its `event:` name when it had one. */
  events (): Array<{ event?: string, data: any }>
  /** The reply text received so far. */
  text (): string
  /** Resolves once `count` text events arrived. */
  received (count: number): Promise<void>
  /** Resolves true when the server ended the response, false when the connection broke. */
  ended: Promise<boolean>
}

/** POST /chat/stream, reading events as they come. */
export async function openStream (port: number, headers: Record<string, string>, body: unknown): Promise<OpenStream> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, method: 'POST', path: '/chat/stream', agent: false, headers: { ...headers, 'content-type': 'application/json' }
    }, resolve)
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
  if (res.statusCode !== 200) throw new Error(`stream answered ${res.statusCode}`)
  let raw = ''
  const waiting: Array<{ count: number, resolve: () => void }> = []
  const events = () => raw.split('\n\n').slice(0, -1).filter((block) => block.includes('data: ')).map((block) => {
    const event = block.match(/^event: (.*)$/m)?.[1]
    return { ...(event ? { event } : {}), data: JSON.parse(block.match(/^data: (.*)$/m)![1]!) }
  })
  const texts = () => events().filter((e) => e.event === undefined && typeof e.data.text === 'string')
  res.on('data', (chunk: Buffer) => {
    raw += chunk.toString()
    const count = texts().length
    for (const w of waiting.filter((w) => count >= w.count)) {
      waiting.splice(waiting.indexOf(w), 1)
      w.resolve()
    }
  })
  const ended = new Promise<boolean>((resolve) => {
    res.once('end', () => resolve(true))
    res.on('error', () => resolve(false))
    res.once('close', () => resolve(false))
  })
  return {
    events,
    text: () => texts().map((e) => e.data.text as string).join(''),
    received: (count) => new Promise<void>((resolve, reject) => {
      if (texts().length >= count) return resolve()
      waiting.push({ count, resolve })
      ended.then(() => reject(new Error(`the stream ended before ${count} events`)))
    }),
    ended
  }
}
