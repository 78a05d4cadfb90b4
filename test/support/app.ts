/**
 * The app under test: the real one, as server.ts builds it, against this file's database server
 * (./database.ts), on a database of its own that is dropped when the test ends.
 */
import { randomBytes } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { MongoClient } from 'mongodb'
import type { Test } from 'tap'
import app, { serverOptions, type AppOptions, type RawEnv } from '../../app.js'
import type { MailOutboxWorkerOptions } from '../../plugins/app/mail/outbox-worker.js'
import { databaseUrl } from './database.js'
import { LogCapture } from './logs.js'

export const TEST_SECRET = 'test-secret-key-that-is-long-enough-0123456789'

export async function testEnv (overrides: RawEnv = {}): Promise<RawEnv> {
  return {
    NODE_ENV: 'test',
    MONGODB_URL: await databaseUrl(),
    DATABASE_NAME: `test_${randomBytes(6).toString('hex')}`,
    SECRET_KEY: TEST_SECRET,
    LOG_LEVEL: 'info',
    RATE_LIMIT_ENABLED: 'false',
    // Load shedding has its own test: on a busy test machine the event loop can stall past a second
    // while an app compiles its schemas, and every request after would get a 503.
    PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0',
    ASSISTANT_WORD_DELAY_MS: '0',
    ...overrides
  }
}

export interface BuildOptions {
  /** Plugin options the environment cannot carry (short SMTP timeouts). */
  plugins?: MailOutboxWorkerOptions
  /** Server options over the service's own (a shorter request timeout). */
  server?: Partial<FastifyHttpOptions<Server>>
  /** Called before the app is ready: a route of the test's own. */
  extend?: (app: FastifyInstance) => void
  /** False: return once the app is ready, without waiting for a database that is not there yet. */
  waitForDatabase?: boolean
}

/**
 * The app as app.ts `buildApp` makes it (the same server options and plugin), with what a test may
 * add; ready, its database set up, and closed and dropped when `t` ends.
 */
export async function build (t: Test, overrides: RawEnv = {}, options: BuildOptions = {}) {
  const env = await testEnv(overrides)
  const logs = new LogCapture()
  const fastify: FastifyInstance = Fastify({ ...serverOptions(env, { stream: logs }), ...options.server })
  const appOptions: AppOptions & MailOutboxWorkerOptions = { env, ...options.plugins }
  await fastify.register(fp(app, { name: 'app' }), appOptions)
  t.teardown(async () => {
    await fastify.close()
    // Best effort: a fault test may have stopped this database already.
    const client = new MongoClient(env.MONGODB_URL!, { serverSelectionTimeoutMS: 2000 })
    try {
      await client.db(env.DATABASE_NAME).dropDatabase()
    } catch {
    } finally {
      await client.close()
    }
  })
  options.extend?.(fastify)
  await fastify.ready()
  if (options.waitForDatabase !== false) await fastify.databaseSetup.whenDone()
  return Object.assign(fastify, { logs, env })
}

export type TestApp = Awaited<ReturnType<typeof build>>

/** A direct handle on the app's database, for asserting stored state. */
export function db (app: TestApp) {
  return app.mongo.db!
}

/** A POST through inject, answered as is. */
export async function post (app: TestApp, url: string, payload?: unknown, headers: Record<string, string> = {}) {
  return await app.inject({ method: 'POST', url, payload: payload as never, headers })
}

/** The app on a real loopback port (listening once, however often asked); its base URL. */
export async function listen (app: TestApp) {
  if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return `http://127.0.0.1:${port}`
}
