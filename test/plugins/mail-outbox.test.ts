import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { MongoClient, type ObjectId } from 'mongodb'
import { createMailOutboxRepository } from '../../plugins/app/mail-outbox-repository.js'
import { build, db } from '../support/app.js'
import { ownDatabase } from '../support/database.js'
import { bodyFields, entryWhen, outbox } from '../support/outbox.js'
import { closedPort, smtpEnv, startSmtp } from '../support/smtp.js'
import { until } from '../support/until.js'
import { PASSWORD, uniqueEmail } from '../support/users.js'

const HOUR = 3_600_000

t.test('a request records its mail before answering; the mail arrives with the entry id as Message-ID', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, smtp.env)
  const email = uniqueEmail('outbox')

  const before = Date.now()
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  t.equal(res.statusCode, 201)
  const recorded = await outbox(db(app)).findOne({ to: email })
  t.ok(recorded, 'the entry exists when the answer arrives')
  t.equal(recorded!.kind, 'verify-email')
  t.equal(recorded!.subject, 'Verify your email address')
  t.ok(recorded!.created_at.getTime() >= before - 1000)
  const lifetime = recorded!.expires_at!.getTime() - recorded!.created_at.getTime()
  t.ok(Math.abs(lifetime - 24 * HOUR) < 60_000, 'it expires with its link (VERIFICATION_TOKEN_EXPIRE_HOURS)')

  const [mail] = await smtp.waitFor(1)
  t.equal(mail!.to, email)
  t.equal(mail!.messageId, `<${recorded!._id.toHexString()}@example.com>`, 'Message-ID is the outbox id at the MAIL_FROM domain')

  const sent = await entryWhen(db(app), email, (e) => e.status === 'sent', 10_000, 'the entry to be sent')
  t.equal(sent.attempts, 1)
  t.ok(sent.finished_at instanceof Date)
  t.equal(sent.lease_owner, null, 'no lease left')
  t.strictSame(bodyFields(sent), [], 'the finished entry keeps no body')
  t.notOk(JSON.stringify(sent).includes(new URL(mail!.link!).searchParams.get('token')!), 'nor the link token')
})

t.test('each kind of mail expires with its link; mails without a link do not expire', async (t) => {
  const app = await build(t, { ...smtpEnv(await closedPort()), MAIL_RETRY_BASE_SECONDS: '3600', RESET_TOKEN_EXPIRE_MINUTES: '15' })
  const to = uniqueEmail('kinds')
  await app.mailer.send(to, { kind: 'reset-password', token: 'a-reset-token' })
  await app.mailer.send(to, { kind: 'password-changed' })
  await app.mailer.send(to, { kind: 'email-verified' })
  const entries = await outbox(db(app)).find({ to }).sort({ created_at: 1 }).toArray()
  t.strictSame(entries.map((e) => e.kind), ['reset-password', 'password-changed', 'email-verified'])
  const reset = entries[0]!
  t.ok(Math.abs(reset.expires_at!.getTime() - reset.created_at.getTime() - 15 * 60_000) < 60_000, 'reset: RESET_TOKEN_EXPIRE_MINUTES')
  t.match(reset.link, /\/auth\/reset-password\/a-reset-token$/)
  t.equal(entries[1]!.expires_at, null)
  t.equal(entries[2]!.expires_at, null)
})

t.test('without MAIL_SERVER the mail goes to the log through the outbox, and its entry ends sent', async (t) => {
  const app = await build(t)
  const email = uniqueEmail('devlog')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })).statusCode, 201)
  const sent = await entryWhen(db(app), email, (e) => e.status === 'sent', 10_000, 'the entry to be sent')
  t.strictSame(bodyFields(sent), [])
  const line = app.logs.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith(`mail to ${email}:`))
  t.match(line?.msg, /"Verify your email address" http:\/\/localhost:3000\/verify-email\?token=[\w-]{43} \(MAIL_SERVER unset, not sent\)$/,
    'recipient, subject and link, for a developer to follow')
})

t.test('deleteFor removes the unsent mails to an address, and nothing else', async (t) => {
  const app = await build(t, { ...smtpEnv(await closedPort()), MAIL_RETRY_BASE_SECONDS: '3600' })
  const [leaving, staying] = [uniqueEmail('leaving'), uniqueEmail('staying')]
  for (const to of [leaving, leaving, staying, leaving]) await app.mailer.send(to, { kind: 'password-changed' })
  // Let the worker's first (refused) attempts settle: with an hour's backoff nothing is retried after.
  await until(async () => await outbox(db(app)).countDocuments({ status: 'pending', attempts: { $gte: 1 } }) === 4, 10_000, 'first attempts')
  const finished = await outbox(db(app)).find({ to: leaving }).sort({ created_at: 1 }).limit(1).next()
  await outbox(db(app)).updateOne({ _id: finished!._id }, { $set: { status: 'sent' } })

  await app.mailer.deleteFor(leaving)
  t.strictSame((await outbox(db(app)).find({ to: leaving }).toArray()).map((e) => e.status), ['sent'], 'only the finished entry is left')
  t.equal(await outbox(db(app)).countDocuments({ to: staying }), 1, 'another address keeps its mail')
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

t.test('the repository: oldest due first, a lease keeps an entry from others, one winner per attempt', async (t) => {
  const database = await ownDatabase(t, `test_outbox_repo_${randomBytes(4).toString('hex')}`)
  const repository = createMailOutboxRepository(outbox(database), database.collection('mail_outbox_claims'))
  await repository.ensureIndexes()
  const mail = (to: string) => ({ to, kind: 'password-changed' as const, subject: 's', text: 't', html: 'h', expires_at: null })

  const ids: ObjectId[] = []
  for (const to of ['b', 'c', 'a']) ids.push(await repository.add(mail(to)))
  const due = { b: -2000, c: -1000, a: -3000 }
  for (const [i, to] of ['b', 'c', 'a'].entries()) {
    await outbox(database).updateOne({ _id: ids[i] }, { $set: { next_attempt_at: new Date(Date.now() + due[to as keyof typeof due]) } })
  }
  await repository.add(mail('later')).then((id) => outbox(database).updateOne({ _id: id }, { $set: { next_attempt_at: new Date(Date.now() + HOUR) } }))

  const claimed = [await repository.claim('one', 300), await repository.claim('one', 300), await repository.claim('one', 300)]
  t.strictSame(claimed.map((e) => e?.to), ['a', 'b', 'c'], 'the entry due longest ago first')
  t.match(claimed[0], { status: 'sending', attempts: 1, lease_owner: 'one' })
  t.equal(await repository.claim('two', 300), null, 'leased and not-yet-due entries are not handed out')

  await sleep(400)
  const retaken = await repository.claim('two', 300)
  t.equal(retaken?.to, 'a', 'an expired lease is taken over')
  t.equal(retaken?.attempts, 2, 'as a new attempt')
  await repository.finish(claimed[0]!, 'sent')
  t.equal((await outbox(database).findOne({ _id: ids[2] }))?.status, 'sending', 'the attempt that lost its lease records nothing')
  await repository.finish(retaken!, 'sent')
  t.equal((await outbox(database).findOne({ _id: ids[2] }))?.status, 'sent', 'the current attempt does')

  await outbox(database).deleteMany({})
  for (let i = 0; i < 30; i++) await repository.add(mail(`race${i}`))
  const won: string[] = []
  await Promise.all(Array.from({ length: 8 }, async (_, worker) => {
    for (let entry = await repository.claim(`w${worker}`, 60_000); entry; entry = await repository.claim(`w${worker}`, 60_000)) {
      won.push(entry.to)
    }
  }))
  t.equal(won.length, 30, '8 concurrent claimers: 30 claims for 30 entries')
  t.equal(new Set(won).size, 30, 'none taken twice')
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
