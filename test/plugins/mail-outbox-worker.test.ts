import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { MongoClient } from 'mongodb'
import { build, db } from '../support/app.js'
import { bodyFields, entryWhen, outbox } from '../support/outbox.js'
import { startSmtp } from '../support/smtp.js'
import { until } from '../support/until.js'
import { PASSWORD, uniqueEmail } from '../support/users.js'

t.test('without MAIL_SERVER the mail goes to the log through the outbox, and its entry ends sent', async (t) => {
  const app = await build(t)
  const email = uniqueEmail('devlog')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })).statusCode, 200)
  const sent = await entryWhen(db(app), email, (e) => e.status === 'sent', 10_000, 'the entry to be sent')
  t.strictSame(bodyFields(sent), [])
  const line = app.logs.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith(`mail to ${email}:`))
  t.match(line?.msg, /"Verify your email address" http:\/\/localhost:3000\/verify-email\?token=[\w-]{43} \(MAIL_SERVER unset, not sent\)$/,
    'recipient, subject and link, for a developer to follow')
})

t.test('two instances on one database share the outbox: 20 mails, each delivered exactly once', async (t) => {
  const smtp = await startSmtp(t)
  const shared = { ...smtp.env, DATABASE_NAME: `test_outbox_${randomBytes(4).toString('hex')}` }
  const apps = [await build(t, shared), await build(t, shared)]
  const recipients = Array.from({ length: 20 }, (_, i) => uniqueEmail(`shared${i}`))
  await Promise.all(recipients.map((to, i) => apps[i % 2]!.mailer.send(to, { kind: 'password-changed' })))

  await smtp.waitFor(20, 20_000)
  await until(async () => await outbox(db(apps[0]!)).countDocuments({ status: 'sent' }) === 20, 10_000, 'every entry to be sent')
  await sleep(1500) // room for a duplicate to show up
  const entries = await outbox(db(apps[0]!)).find({}).toArray()
  t.equal(smtp.mails.length, 20, 'twenty mails arrived')
  t.strictSame(smtp.mails.map((m) => m.to).sort(), [...recipients].sort(), 'one to each recipient')
  t.strictSame(smtp.mails.map((m) => m.messageId).sort(), entries.map((e) => `<${e._id.toHexString()}@example.com>`).sort(),
    'one per entry, by Message-ID')
  t.ok(entries.every((e) => e.status === 'sent'), 'every entry sent')
})

t.test('close hands a mail still being sent back to the outbox', async (t) => {
  const smtp = await startSmtp(t, { stall: Infinity })
  const app = await build(t, smtp.env)
  const to = uniqueEmail('inflight')
  await app.mailer.send(to, { kind: 'password-changed' })
  await until(async () => smtp.messagesSeen === 1, 10_000, 'the message to reach the server')

  await app.close()
  const client = new MongoClient(app.env.MONGODB_URL!)
  t.teardown(() => client.close())
  const entry = await outbox(client.db(app.env.DATABASE_NAME)).findOne({ to })
  t.match(entry, { status: 'pending', lease_until: null, lease_owner: null, attempts: 1 }, 'pending again, lease cleared')
  t.ok(entry!.next_attempt_at.getTime() <= Date.now(), 'due at once for the next instance')
  t.ok(entry!.text, 'still holding its body for that attempt')
})
