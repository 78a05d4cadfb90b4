/** Helpers for the mail outbox tests (not a test file itself). */
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Db } from 'mongodb'
import type { Test } from 'tap'
import app, { serverOptions, type AppOptions, type RawEnv } from '../app.js'
import type { OutboxEntry } from '../plugins/app/mail/outbox-repository.js'
import type { MailOutboxWorkerOptions } from '../plugins/app/mail/outbox-worker.js'
import { LogCapture, testEnv } from './helper.js'

export function outbox (db: Db) {
  return db.collection<OutboxEntry>('mail_outbox')
}

/** Polls `probe` every 100 ms until it returns something truthy; throws after `ms`. */
export async function until<T> (probe: () => Promise<T | null | undefined | false>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`gave up waiting ${ms} ms for ${what}`)
    await sleep(100)
  }
}

/** The outbox entry of the one mail to `to`, once it matches `test`. */
export async function entryWhen (db: Db, to: string, test: (entry: OutboxEntry) => boolean, ms: number, what: string) {
  return await until(async () => {
    const entry = await outbox(db).findOne({ to })
    return entry && test(entry) ? entry : null
  }, ms, what)
}

/** Like helper.ts `build`, with plugin options the environment cannot carry (short SMTP timeouts). */
export async function buildWithOptions (t: Test, overrides: RawEnv, options: MailOutboxWorkerOptions) {
  const env = await testEnv(overrides)
  const logs = new LogCapture()
  const fastify: FastifyInstance = Fastify(serverOptions(env, logs))
  const appOptions: AppOptions & MailOutboxWorkerOptions = { env, ...options }
  await fastify.register(fp(app, { name: 'app' }), appOptions)
  t.teardown(() => fastify.close())
  await fastify.ready()
  await fastify.databaseSetup.whenDone()
  return Object.assign(fastify, { logs, env })
}

/** The error-level log lines that name this outbox entry. */
export function errorLinesFor (logs: LogCapture, entry: OutboxEntry) {
  return logs.lines.filter((line) => line.level === 50 && JSON.stringify(line).includes(entry._id.toHexString()))
}

/** The entry's error lines once there is one: the worker logs just after it stores the outcome (bounded: 5 s). */
export async function errorLinesOnceLogged (logs: LogCapture, entry: OutboxEntry) {
  for (let i = 0; i < 100 && errorLinesFor(logs, entry).length === 0; i++) await sleep(50)
  return errorLinesFor(logs, entry)
}
