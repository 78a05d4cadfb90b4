/**
 * The SMTP server refuses our login (530, 535): our settings are wrong, not the mail. The mail waits
 * with the usual backoff, every attempt is logged at error by entry id only, and it goes out once
 * the settings are fixed.
 */
import t from 'tap'
import { MongoClient } from 'mongodb'
import { build, db, type TestApp } from '../support/app.js'
import { entryWhen, errorLinesFor, outbox } from '../support/outbox.js'
import { startSmtp } from '../support/smtp.js'
import { uniqueEmail } from '../support/users.js'

const LOGIN = { user: 'mailer-login', pass: 'the-right-password' }
const FAST_RETRIES = { MAIL_RETRY_BASE_SECONDS: '1' }

/** After close, every attempt has been recorded and logged: the entry and its error lines. */
async function settled (app: TestApp, to: string) {
  await app.close()
  const client = new MongoClient(app.env.MONGODB_URL!)
  try {
    const entry = (await outbox(client.db(app.env.DATABASE_NAME)).findOne({ to }))!
    return { entry, lines: errorLinesFor(app.logs, entry) }
  } finally {
    await client.close()
  }
}

t.test('SMTP 535 (wrong MAIL_PASSWORD): retried with backoff, an error line per attempt, sent once the password is fixed', async (t) => {
  const smtp = await startSmtp(t, { auth: LOGIN })
  const stale = await build(t, { ...smtp.env, ...FAST_RETRIES, MAIL_USERNAME: LOGIN.user, MAIL_PASSWORD: 'a-stale-password' })
  const to = uniqueEmail('login')
  await stale.mailer.send(to, { kind: 'password-changed' })

  const second = await entryWhen(db(stale), to, (e) => e.status === 'pending' && e.attempts === 2, 15_000, 'two refused attempts')
  t.equal(second.last_error, '535')
  t.ok(second.next_attempt_at.getTime() - second.last_attempt_at!.getTime() >= 1800, 'the second retry waits twice the 1 s base (less up to a tenth)')

  const { entry, lines } = await settled(stale, to)
  t.equal(entry.status, 'pending', 'never failed for good')
  t.ok(entry.text, 'the mail keeps its body for the next attempt')
  t.equal(smtp.messagesSeen, 0, 'no message reached the server')
  t.equal(lines.length, entry.attempts, `one error line per attempt (${entry.attempts})`)
  t.same(lines.map((line) => line.attempts), Array.from({ length: entry.attempts }, (_, i) => i + 1))
  for (const line of lines) {
    t.match(line, { mail_id: entry._id.toHexString(), error: '535', msg: /refused our login \(check MAIL_USERNAME and MAIL_PASSWORD\); will retry/ })
    const text = JSON.stringify(line)
    t.notOk(text.includes(to) || text.includes('@example.com') || text.includes(LOGIN.user) || text.includes('a-stale-password'),
      'no address, user name or password')
  }

  const fixed = await build(t, { ...smtp.env, ...FAST_RETRIES, MAIL_USERNAME: LOGIN.user, MAIL_PASSWORD: LOGIN.pass, DATABASE_NAME: stale.env.DATABASE_NAME })
  const [mail] = await smtp.waitFor(1, 20_000)
  const sent = await entryWhen(db(fixed), to, (e) => e.status === 'sent', 10_000, 'the entry to be sent')
  t.equal(mail!.to, to)
  t.equal(mail!.messageId, `<${sent._id.toHexString()}@example.com>`, 'the queued mail, by Message-ID')
  t.equal(sent.attempts, entry.attempts + 1, 'at the first attempt with the right password')
  t.equal(errorLinesFor(fixed.logs, sent).length, 0, 'nothing logged at error once it is sent')
})

t.test('SMTP 530 (the server requires a login, none is configured): retried, logged at error by id', async (t) => {
  const smtp = await startSmtp(t, { auth: LOGIN })
  const app = await build(t, { ...smtp.env, ...FAST_RETRIES })
  const to = uniqueEmail('nologin')
  await app.mailer.send(to, { kind: 'password-changed' })

  await entryWhen(db(app), to, (e) => e.status === 'pending' && e.attempts >= 1, 15_000, 'a refused attempt')
  const { entry, lines } = await settled(app, to)
  t.match(entry, { status: 'pending', last_error: '530' }, 'waiting for the next attempt, not failed')
  t.equal(lines.length, entry.attempts, 'one error line per attempt')
  t.match(lines[0], { level: 50, mail_id: entry._id.toHexString(), error: '530' })
  t.notOk(JSON.stringify(lines).includes(to), 'no address')
})
