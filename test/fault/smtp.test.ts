/**
 * SMTP faults (SECURITY.md F4–F7): the server refuses, never greets, answers 4xx or 5xx, or the
 * service dies mid-send. Requests never wait on SMTP, and every mail ends sent, failed or abandoned.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { build, db, type TestApp } from '../support/app.js'
import { ownDatabase } from '../support/database.js'
import { bodyFields, entryWhen, errorLinesOnceLogged, outbox } from '../support/outbox.js'
import { call, startService, whenReady } from '../support/service.js'
import { closedPort, smtpEnv, startSilentServer, startSmtp } from '../support/smtp.js'
import { until } from '../support/until.js'
import { PASSWORD, uniqueEmail } from '../support/users.js'

const FAST_RETRIES = { MAIL_RETRY_BASE_SECONDS: '1' }

async function register (app: TestApp, email: string) {
  const started = Date.now()
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  return { status: res.statusCode, ms: Date.now() - started }
}

t.test('F4 SMTP refuses: register answers at once; the mail backs off, then goes out once a server listens', async (t) => {
  const port = await closedPort()
  const app = await build(t, { ...smtpEnv(port), ...FAST_RETRIES })
  const email = uniqueEmail('refused')
  const answer = await register(app, email)
  t.equal(answer.status, 200)
  t.ok(answer.ms < 5000, `answered in ${answer.ms} ms, not held by SMTP`)

  // Each failed attempt waits twice as long as the one before: 1 s, 2 s, 4 s (less up to a tenth).
  const waits: number[] = []
  for (let attempts = 1; attempts <= 3; attempts++) {
    const entry = await entryWhen(db(app), email, (e) => e.status === 'pending' && e.attempts === attempts, 15_000, `attempt ${attempts} to fail`)
    t.equal(entry.last_error, 'ECONNREFUSED', `attempt ${attempts}: connection refused`)
    waits.push(entry.next_attempt_at.getTime() - entry.last_attempt_at!.getTime())
  }
  waits.forEach((wait, i) => {
    const base = 1000 * 2 ** i
    t.ok(wait >= base * 0.9 - 50 && wait <= base + 1000, `retry ${i + 1} after ${wait} ms (base ${base} ms)`)
  })

  const smtp = await startSmtp(t, { port })
  const [mail] = await smtp.waitFor(1, 15_000)
  const sent = await entryWhen(db(app), email, (e) => e.status === 'sent', 10_000, 'the entry to be sent')
  t.equal(mail!.to, email)
  t.equal(mail!.messageId, `<${sent._id.toHexString()}@example.com>`, 'matched by Message-ID')
  t.equal(sent.attempts, 4, 'sent at the fourth attempt')
  t.equal(sent.last_error, null)
})

t.test('F5 SMTP never greets: attempts end at the (shortened) timeouts, at most 4 at once, and are retried', async (t) => {
  const silent = await startSilentServer(t)
  const app = await build(t, { ...silent.env, ...FAST_RETRIES }, {
    plugins: { smtpTimeouts: { connectionTimeout: 500, greetingTimeout: 500, socketTimeout: 1000 } }
  })
  const recipients = Array.from({ length: 8 }, (_, i) => uniqueEmail(`silent${i}`))
  for (const to of recipients) await app.mailer.send(to, { kind: 'password-changed' })

  const health = Date.now()
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)
  const answer = await register(app, uniqueEmail('silent-register'))
  t.equal(answer.status, 200, 'requests go on meanwhile')
  t.ok(Date.now() - health < 5000, 'and answer promptly')

  const retried = await until(async () => {
    const entries = await outbox(db(app)).find({ to: { $in: recipients } }).toArray()
    return entries.every((e) => e.attempts >= 2) ? entries : null
  }, 30_000, 'every mail to be tried twice')
  t.ok(silent.mostOpen <= 4, `at most 4 connections at once (saw ${silent.mostOpen})`)
  t.ok(silent.connections >= 16, 'every attempt connected')
  const failedOnce = retried.find((e) => e.status === 'pending')
  t.ok(failedOnce, 'an entry waiting for its next attempt')
  t.equal(failedOnce!.last_error, 'ETIMEDOUT', 'the greeting timeout ended it')
  t.ok(failedOnce!.next_attempt_at.getTime() - failedOnce!.last_attempt_at!.getTime() < 5000, 'well within the default 10 s')
})

t.test('F6 SMTP answers 451 three times, then 250: delivered exactly once', async (t) => {
  const smtp = await startSmtp(t, { reject: { code: 451, count: 3 } })
  const app = await build(t, { ...smtp.env, ...FAST_RETRIES })
  const email = uniqueEmail('busy')
  t.equal((await register(app, email)).status, 200)

  const sent = await entryWhen(db(app), email, (e) => e.status === 'sent', 30_000, 'the entry to be sent')
  await sleep(1500) // room for a duplicate to show up
  t.equal(smtp.messagesSeen, 4, 'four attempts reached the server')
  t.equal(smtp.mails.length, 1, 'one mail accepted')
  t.equal(smtp.mails[0]!.messageId, `<${sent._id.toHexString()}@example.com>`)
  t.equal(sent.attempts, 4)
})

t.test('F6 SMTP answers 550: failed after one attempt, logged by id only', async (t) => {
  const smtp = await startSmtp(t, { reject: { code: 550, count: Infinity } })
  const app = await build(t, { ...smtp.env, ...FAST_RETRIES })
  const email = uniqueEmail('refused')
  t.equal((await register(app, email)).status, 200)

  const failed = await entryWhen(db(app), email, (e) => e.status === 'failed', 15_000, 'the entry to fail')
  await sleep(2500) // a retry would have come after 1 s
  t.equal(smtp.messagesSeen, 1, 'no further attempt')
  t.equal(smtp.mails.length, 0)
  t.match(failed, { attempts: 1, last_error: '550', lease_owner: null })
  t.strictSame(bodyFields(failed), [], 'the body and link are dropped')

  const lines = await errorLinesOnceLogged(app.logs, failed)
  t.equal(lines.length, 1, 'one error line names the entry')
  t.match(lines[0], { mail_id: failed._id.toHexString(), status: 'failed' })
  const text = JSON.stringify(lines[0])
  t.notOk(text.includes(email) || text.includes('@example.com') || text.includes('http'), 'no address, no link')
})

t.test('F6 a link that expired before it could be sent: abandoned, logged by id only', async (t) => {
  const app = await build(t, { ...smtpEnv(await closedPort()), ...FAST_RETRIES })
  const email = uniqueEmail('expired')
  t.equal((await register(app, email)).status, 200)
  const waiting = await entryWhen(db(app), email, (e) => e.status === 'pending' && e.attempts >= 1, 15_000, 'a failed attempt')
  const link = waiting.link!
  await outbox(db(app)).updateOne({ _id: waiting._id }, { $set: { expires_at: new Date(Date.now() - 1000), next_attempt_at: new Date() } })

  const abandoned = await entryWhen(db(app), email, (e) => e.status === 'abandoned', 15_000, 'the entry to be abandoned')
  t.strictSame(bodyFields(abandoned), [], 'the body and link are dropped')
  t.notOk(JSON.stringify(abandoned).includes(link))
  const lines = await errorLinesOnceLogged(app.logs, abandoned)
  t.equal(lines.length, 1, 'one error line names the entry')
  t.match(lines[0], { mail_id: abandoned._id.toHexString(), status: 'abandoned' })
  t.notOk(JSON.stringify(lines[0]).includes(email) || JSON.stringify(lines[0]).includes(link), 'no address, no link')
})

t.test('F7 kill -9 while a mail is being sent: a new process sends it once the lease has expired', async (t) => {
  const smtp = await startSmtp(t, { stall: 1 }) // the first message is never answered
  const database = `test_smtp_crash_${randomBytes(4).toString('hex')}`
  const entries = outbox(await ownDatabase(t, database))
  const env = { ...smtp.env, ...FAST_RETRIES, DATABASE_NAME: database, MAIL_LEASE_SECONDS: '3' } as Record<string, string>

  const first = await startService(t, env)
  await whenReady(first.port)
  const email = uniqueEmail('crash')
  t.equal((await call(first.port, 'POST', '/auth/register', { email, password: PASSWORD })).status, 200)
  await until(async () => smtp.messagesSeen === 1, 15_000, 'the message to reach the server')
  first.child.kill('SIGKILL')
  t.equal(await first.exited, null, 'the first process was killed')

  const held = await entries.findOne({ to: email })
  t.match(held, { status: 'sending', attempts: 1 }, 'the dead process still holds the lease')
  t.equal(held!.lease_until!.getTime() - held!.last_attempt_at!.getTime(), 3000, 'for MAIL_LEASE_SECONDS')

  const second = await startService(t, env)
  await whenReady(second.port)
  const [mail] = await smtp.waitFor(1, 20_000)
  const sent = await until(async () => {
    const entry = await entries.findOne({ to: email })
    return entry?.status === 'sent' ? entry : null
  }, 10_000, 'the entry to be sent')
  t.ok(sent.last_attempt_at!.getTime() >= held!.lease_until!.getTime(), 'taken over once the lease had expired')
  t.equal(mail!.messageId, `<${sent._id.toHexString()}@example.com>`)
  t.equal(sent.attempts, 2, 'the second attempt sent it')
  t.strictSame(bodyFields(sent), [], 'the sent entry keeps no body or link')
  await sleep(1500)
  t.equal(smtp.mails.length, 1, 'delivered once')
  t.equal(await entries.countDocuments({ status: { $in: ['pending', 'sending'] } }), 0, 'nothing left pending or sending')
})
