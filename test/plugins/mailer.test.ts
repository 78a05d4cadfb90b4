import t from 'tap'
import { build, db } from '../support/app.js'
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
  t.equal(res.statusCode, 200)
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
