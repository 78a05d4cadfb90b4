/**
 * Builds the real app against a real database: MONGODB_URL when set, otherwise one throwaway
 * FerretDB per test file (over PostgreSQL: a database of its own in the cluster `npm test` shares,
 * or a cluster of its own under a bare `npx tap`). Every app gets its own database, dropped when
 * the test ends.
 */
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import t from 'tap'
import type { Test } from 'tap'
import { MongoClient } from 'mongodb'
import { buildApp, type RawEnv } from '../app.js'
import { startFerretdb, type RunningFerretdb } from '../scripts/ferretdb.js'

let database: Promise<RunningFerretdb | null> | undefined

/** The database URL for this test file, starting FerretDB on first use. */
export async function databaseUrl (): Promise<string> {
  database ??= process.env.MONGODB_URL ? Promise.resolve(null) : startFerretdb()
  const running = await database
  return process.env.MONGODB_URL ?? running!.url
}

/** The running FerretDB of this file (fault tests pause and restart it); null with MONGODB_URL. */
export async function ferretdb (): Promise<RunningFerretdb | null> {
  await databaseUrl()
  return await database!
}

t.teardown(async () => {
  const running = await database
  await running?.stop()
})

/** Log lines of one app, parsed, so tests can assert what was (and was not) logged. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = []
  readonly raw: string[] = []
  override _write (chunk: Buffer, _encoding: string, callback: () => void) {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue
      this.raw.push(line)
      try { this.lines.push(JSON.parse(line)) } catch { this.lines.push({ msg: line }) }
    }
    callback()
  }

  text () {
    return this.raw.join('\n')
  }
}

export const TEST_SECRET = 'test-secret-key-that-is-long-enough-0123456789'

export async function testEnv (overrides: RawEnv = {}): Promise<RawEnv> {
  return {
    NODE_ENV: 'test',
    MONGODB_URL: await databaseUrl(),
    DATABASE_NAME: `test_${randomBytes(6).toString('hex')}`,
    SECRET_KEY: TEST_SECRET,
    LOG_LEVEL: 'info',
    RATE_LIMIT_ENABLED: 'false',
    ASSISTANT_WORD_DELAY_MS: '0',
    ...overrides
  }
}

/** The app as the service runs it, on its own database; closed and dropped when `t` ends. */
export async function build (t: Test, overrides: RawEnv = {}) {
  const env = await testEnv(overrides)
  const logs = new LogCapture()
  const app = await buildApp(env, logs)
  t.teardown(async () => {
    await app.close()
    // Best effort: a fault test may have stopped this database already.
    const client = new MongoClient(env.MONGODB_URL!, { serverSelectionTimeoutMS: 2000 })
    try {
      await client.db(env.DATABASE_NAME).dropDatabase()
    } catch {
    } finally {
      await client.close()
    }
  })
  await app.ready()
  await app.databaseSetup.whenDone()
  return Object.assign(app, { logs, env })
}

export type TestApp = Awaited<ReturnType<typeof build>>

let counter = 0
/** A fresh address for each call, so tests never share users. */
export function uniqueEmail (label = 'user') {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${counter++}@example.com`
}

export const PASSWORD = 'correct horse battery staple'

/** Registers and logs in a new user; returns its token and `authorization` header. */
export async function signUp (app: TestApp, email = uniqueEmail(), password = PASSWORD) {
  const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } })
  if (registered.statusCode !== 201) throw new Error(`register failed: ${registered.statusCode} ${registered.body}`)
  const token = await login(app, email, password)
  return { email, password, token, user: registered.json(), headers: { authorization: `Bearer ${token}` } }
}

export async function login (app: TestApp, email: string, password = PASSWORD): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username: email, password }).toString()
  })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return response.json().access_token
}

/** A direct handle on the app's database, for asserting stored state. */
export function db (app: TestApp) {
  return app.mongo.db!
}
