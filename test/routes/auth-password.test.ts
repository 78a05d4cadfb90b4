import t from 'tap'
import { build, db, post, type TestApp } from '../support/app.js'
import { allMailsAfterClose, appWithMail, mailFor, resetToken, SUBJECTS, tokenDocs, tokenOf } from '../support/mail.js'
import { entryWhen, outbox } from '../support/outbox.js'
import { bearer, login, loginForm, me, PASSWORD, signUp, uniqueEmail, userDoc } from '../support/users.js'

const RESET_DETAIL = 'If the address belongs to an account, a password reset email is on its way.'
const NEW_PASSWORD = 'a whole new password 🔑'

function changePassword (app: TestApp, token: string | undefined, body: Record<string, unknown>) {
  return post(app, '/auth/change-password', body, token ? bearer(token) : {})
}

t.test('POST /auth/change-password', async (t) => {
  t.test('changes the password, ends the other sessions and mails the user', async (t) => {
    const { app, smtp } = await appWithMail(t)
    const { email, token: other } = await signUp(app)
    const current = await login(app, email)

    const res = await changePassword(app, current, { current_password: PASSWORD, new_password: NEW_PASSWORD })
    t.equal(res.statusCode, 200)
    t.strictSame(res.json(), { detail: 'Password updated successfully' })

    t.equal((await loginForm(app, email, PASSWORD)).statusCode, 401, 'the old password no longer works')
    t.equal((await loginForm(app, email, NEW_PASSWORD)).statusCode, 200, 'the new one does')

    const otherMe = await me(app, other)
    t.equal(otherMe.statusCode, 401, 'a session opened before the change is signed out')
    t.equal(otherMe.json().detail, 'Could not validate credentials')
    t.equal(otherMe.headers['www-authenticate'], 'Bearer error="invalid_token"')
    t.equal((await me(app, current)).statusCode, 200, 'the session that made the change stays')

    const mail = await mailFor(smtp, email, SUBJECTS.changed)
    t.notOk(mail.text.includes(NEW_PASSWORD), 'the mail does not repeat the password')
  })

  t.test('refuses a wrong current password, an unchanged one and a weak one', async (t) => {
    const { app, smtp } = await appWithMail(t)
    const { email, token } = await signUp(app)

    const wrong = await changePassword(app, token, { current_password: 'not my password', new_password: NEW_PASSWORD })
    t.equal(wrong.statusCode, 401)
    t.equal(wrong.json().detail, 'Current password is incorrect')
    t.match(wrong.headers['content-type'], /^application\/problem\+json/)

    const same = await changePassword(app, token, { current_password: PASSWORD, new_password: PASSWORD })
    t.equal(same.statusCode, 400)
    t.equal(same.json().detail, 'New password must be different from current password')

    const weak = await changePassword(app, token, { current_password: PASSWORD, new_password: 'short' })
    t.equal(weak.statusCode, 422)
    t.strictSame(weak.json().errors.map((e: { loc: string[] }) => e.loc), [['body', 'new_password']])

    t.equal((await changePassword(app, token, { new_password: NEW_PASSWORD })).statusCode, 422, 'missing current password')
    t.equal((await me(app, token)).statusCode, 200, 'the session is untouched')
    t.equal((await loginForm(app, email, PASSWORD)).statusCode, 200, 'the password is unchanged')

    const mails = await allMailsAfterClose(app, smtp, email)
    t.strictSame(mails.map((m) => m.subject), [SUBJECTS.verify], 'no "password changed" mail')
  })

  t.test('needs a valid bearer token', async (t) => {
    const app = await build(t)
    const body = { current_password: PASSWORD, new_password: NEW_PASSWORD }

    const none = await changePassword(app, undefined, body)
    t.equal(none.statusCode, 401)
    t.equal(none.json().detail, 'Not authenticated')
    t.equal(none.headers['www-authenticate'], 'Bearer')

    const bad = await changePassword(app, 'not.a.token', body)
    t.equal(bad.statusCode, 401)
    t.equal(bad.json().detail, 'Could not validate credentials')
  })
})

t.test('POST /auth/forgot-password', async (t) => {
  t.test('answers the same for known and unknown addresses; only the known one gets a link', async (t) => {
    const { app, smtp } = await appWithMail(t, {}) // default throttle: the verification mail must not hold back the reset mail
    const { email, token: session } = await signUp(app)
    const hashBefore = (await userDoc(app, email))!.password_hash
    const unknown = uniqueEmail('unknown')

    const known = await post(app, '/auth/forgot-password', { email: email.toUpperCase() })
    const stranger = await post(app, '/auth/forgot-password', { email: unknown })
    t.equal(known.statusCode, 200)
    t.equal(stranger.statusCode, 200)
    t.strictSame(known.json(), { detail: RESET_DETAIL })
    t.strictSame(stranger.json(), known.json(), 'identical answers')

    const mail = await mailFor(smtp, email, SUBJECTS.reset)
    t.match(mail.link, /^http:\/\/localhost:3000\/auth\/reset-password\/[A-Za-z0-9_-]{43,}$/)
    t.ok(mail.html.includes(mail.link!), 'the HTML part carries the same link')

    t.equal((await userDoc(app, email))!.password_hash, hashBefore, 'the password is not touched')
    t.equal((await loginForm(app, email, PASSWORD)).statusCode, 200, 'the password still works')
    t.equal((await me(app, session)).statusCode, 200, 'sessions stay')

    // The same work for both: each request recorded an entry; the worker found no account for one.
    const strangers = await outbox(db(app)).find({ to: unknown }).toArray()
    t.equal(strangers.length, 1, 'the unknown address got an outbox entry too')
    const skipped = await entryWhen(db(app), unknown, (e) => e.status !== 'pending' && e.status !== 'sending', 10_000, 'the unknown address\'s entry')
    t.equal(skipped.status, 'skipped', 'no account needs it: skipped')
    t.notOk(skipped.link ?? skipped.text, 'no link was made for it')
    t.equal((await outbox(db(app)).findOne({ to: email, kind: 'reset-password' }))?.status, 'sent')

    const again = await post(app, '/auth/forgot-password', { email })
    t.strictSame(again.json(), { detail: RESET_DETAIL }, 'a throttled request answers the same')
    const mails = await allMailsAfterClose(app, smtp)
    t.equal(mails.filter((m) => m.to === unknown).length, 0, 'nothing to the unknown address')
    t.strictSame(mails.filter((m) => m.to === email).map((m) => m.subject), [SUBJECTS.verify, SUBJECTS.reset],
      'one reset mail per throttle window')
  })

  t.test('takes the address as the original\'s query parameter, without a body', async (t) => {
    const { app, smtp } = await appWithMail(t, { FRONTEND_URL: 'https://chat.example.org' })
    const { email } = await signUp(app)
    const res = await post(app, `/auth/forgot-password?email=${encodeURIComponent(email)}`)
    t.equal(res.statusCode, 200, res.body)
    t.strictSame(res.json(), { detail: RESET_DETAIL })
    const mail = await mailFor(smtp, email, SUBJECTS.reset)
    t.match(mail.link, /^https:\/\/chat\.example\.org\/auth\/reset-password\/[A-Za-z0-9_-]+$/)
  })

  t.test('a missing or invalid address is a 422', async (t) => {
    const app = await build(t)
    t.equal((await post(app, '/auth/forgot-password', {})).statusCode, 422)
    t.equal((await post(app, '/auth/forgot-password', { email: 'nope' })).statusCode, 422)
    t.equal((await post(app, '/auth/forgot-password', { email: { $ne: null } })).statusCode, 422)
  })
})

t.test('POST /auth/reset-password', async (t) => {
  t.test('with the link token and a JSON body: resets once, ends every session, mails the user', async (t) => {
    const { app, smtp } = await appWithMail(t)
    const { email, token: firstSession } = await signUp(app)
    const secondSession = await login(app, email)
    const token = await resetToken(app, smtp, email)

    const res = await post(app, `/auth/reset-password/${token}`, { new_password: NEW_PASSWORD })
    t.equal(res.statusCode, 200)
    t.strictSame(res.json(), { detail: 'Password reset successfully' }, 'no access token is returned')

    t.equal((await loginForm(app, email, PASSWORD)).statusCode, 401, 'the old password no longer works')
    t.equal((await loginForm(app, email, NEW_PASSWORD)).statusCode, 200, 'the new one does')
    for (const session of [firstSession, secondSession]) {
      t.equal((await me(app, session)).statusCode, 401, 'every earlier session is signed out')
    }

    const reused = await post(app, `/auth/reset-password/${token}`, { new_password: 'yet another password' })
    t.equal(reused.statusCode, 400, 'the token works once')
    t.equal(reused.json().detail, 'Invalid or expired reset token')
    t.equal((await loginForm(app, email, NEW_PASSWORD)).statusCode, 200, 'the failed reuse changed nothing')

    await mailFor(smtp, email, SUBJECTS.changed)
  })

  t.test('with the original\'s query parameter; neither the password nor the token is logged', async (t) => {
    const { app, smtp } = await appWithMail(t)
    const { email } = await signUp(app)
    const token = await resetToken(app, smtp, email)
    const secret = 'query-borne secret 9f3b&=+ü'

    const res = await post(app, `/auth/reset-password/${token}?new_password=${encodeURIComponent(secret)}`)
    t.equal(res.statusCode, 200, res.body)
    t.strictSame(res.json(), { detail: 'Password reset successfully' })
    t.equal((await loginForm(app, email, secret)).statusCode, 200, 'the query password is the new password')

    const logs = app.logs.text()
    t.ok(logs.includes('/auth/reset-password/'), 'the request was logged')
    for (const leak of [secret, encodeURIComponent(secret), new URLSearchParams({ p: secret }).toString().slice(2), token]) {
      t.notOk(logs.includes(leak), `the log does not contain ${leak === token ? 'the token' : 'the password'}`)
    }
  })

  t.test('POST /auth/reset-password takes the token in the body', async (t) => {
    const { app, smtp } = await appWithMail(t)
    const { email } = await signUp(app)
    const token = await resetToken(app, smtp, email)

    const res = await post(app, '/auth/reset-password', { token, new_password: NEW_PASSWORD })
    t.equal(res.statusCode, 200)
    t.strictSame(res.json(), { detail: 'Password reset successfully' })
    t.equal((await loginForm(app, email, NEW_PASSWORD)).statusCode, 200)

    const reused = await post(app, '/auth/reset-password', { token, new_password: 'yet another password' })
    t.equal(reused.statusCode, 400)
    t.equal(reused.json().detail, 'Invalid or expired reset token')
    t.equal((await post(app, '/auth/reset-password', { new_password: NEW_PASSWORD })).statusCode, 422, 'missing token')
  })

  t.test('20 concurrent uses of one token: exactly one succeeds (10 tokens in turn)', async (t) => {
    const { app, smtp } = await appWithMail(t)
    const { email } = await signUp(app)
    const rounds = 10
    const winnersPerRound: number[] = []
    let lastWinner = -1
    for (let round = 1; round <= rounds; round++) {
      const token = await resetToken(app, smtp, email, round)
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        post(app, `/auth/reset-password/${token}`, { new_password: `round ${round} password ${i}` })))
      const statuses = answers.map((r) => r.statusCode)
      winnersPerRound.push(statuses.filter((s) => s === 200).length)
      t.equal(statuses.filter((s) => s === 200 || s === 400).length, 20, `round ${round}: only 200 and 400, ${statuses.join(',')}`)
      for (const r of answers.filter((a) => a.statusCode === 400)) t.equal(r.json().detail, 'Invalid or expired reset token')
      lastWinner = statuses.indexOf(200)
    }
    t.strictSame(winnersPerRound, Array(rounds).fill(1), 'exactly one 200 per token')

    t.equal((await loginForm(app, email, `round ${rounds} password ${lastWinner}`)).statusCode, 200, 'the winner\'s password is set')
    const loser = lastWinner === 0 ? 1 : 0
    t.equal((await loginForm(app, email, `round ${rounds} password ${loser}`)).statusCode, 401, 'a loser\'s password is not')

    const mails = await allMailsAfterClose(app, smtp, email)
    t.equal(mails.filter((m) => m.subject === SUBJECTS.changed).length, rounds, 'one "password changed" mail per reset')
  })

  t.test('a reset voids the other reset links', async (t) => {
    const { app, smtp } = await appWithMail(t)
    const { email } = await signUp(app)
    const first = await resetToken(app, smtp, email, 1)
    const second = await resetToken(app, smtp, email, 2)
    t.not(first, second)

    t.equal((await post(app, `/auth/reset-password/${second}`, { new_password: NEW_PASSWORD })).statusCode, 200)
    const older = await post(app, `/auth/reset-password/${first}`, { new_password: 'the older link tries' })
    t.equal(older.statusCode, 400, 'the other link died')
    t.equal(older.json().detail, 'Invalid or expired reset token')
    const user = await userDoc(app, email)
    t.equal((await tokenDocs(app, user!._id, 'reset-password')).filter((d) => d.state === 'active').length, 0)
    t.equal((await loginForm(app, email, NEW_PASSWORD)).statusCode, 200)
  })

  t.test('a new reset link voids the older one', async (t) => {
    const { app, smtp } = await appWithMail(t)
    const { email } = await signUp(app)
    const first = await resetToken(app, smtp, email, 1)
    const second = await resetToken(app, smtp, email, 2)
    const older = await post(app, `/auth/reset-password/${first}`, { new_password: 'the older link tries' })
    t.equal(older.statusCode, 400, 'the older link died when the new one was sent')
    t.equal(older.json().detail, 'Invalid or expired reset token')
    t.equal((await post(app, `/auth/reset-password/${second}`, { new_password: NEW_PASSWORD })).statusCode, 200, 'the newest works')
    t.equal((await loginForm(app, email, NEW_PASSWORD)).statusCode, 200)
  })

  t.test('refuses weak passwords, wrong-purpose, expired and unknown tokens', async (t) => {
    const { app, smtp } = await appWithMail(t)
    const { email } = await signUp(app)
    const token = await resetToken(app, smtp, email)
    const verifyToken = tokenOf(await mailFor(smtp, email, SUBJECTS.verify))

    const weak = await post(app, `/auth/reset-password/${token}`, { new_password: 'short' })
    t.equal(weak.statusCode, 422, 'policy failure')
    t.strictSame(weak.json().errors.map((e: { loc: string[] }) => e.loc), [['body', 'new_password']])
    const weakQuery = await post(app, `/auth/reset-password/${token}?new_password=${'x'.repeat(129)}`)
    t.equal(weakQuery.statusCode, 422, 'policy failure in the query')
    t.equal((await post(app, `/auth/reset-password/${token}`, {})).statusCode, 422, 'no new password at all')

    const wrongPurpose = await post(app, `/auth/reset-password/${verifyToken}`, { new_password: NEW_PASSWORD })
    t.equal(wrongPurpose.statusCode, 400, 'a verification token is not a reset token')
    t.equal(wrongPurpose.json().detail, 'Invalid or expired reset token')
    const unknown = await post(app, '/auth/reset-password', { token: 'A'.repeat(43), new_password: NEW_PASSWORD })
    t.equal(unknown.statusCode, 400)
    t.equal(unknown.json().detail, 'Invalid or expired reset token')
    t.equal((await loginForm(app, email, PASSWORD)).statusCode, 200, 'nothing changed so far')

    const user = await userDoc(app, email)
    const { modifiedCount } = await app.mongo.db!.collection('one_time_tokens').updateMany(
      { user_id: user!._id, purpose: 'reset-password' }, { $set: { expires_at: new Date(Date.now() - 1000) } })
    t.equal(modifiedCount, 1, 'the refused attempts left the token unused')
    const expired = await post(app, `/auth/reset-password/${token}`, { new_password: NEW_PASSWORD })
    t.equal(expired.statusCode, 400, 'an expired token')
    t.equal(expired.json().detail, 'Invalid or expired reset token')
    t.equal((await loginForm(app, email, PASSWORD)).statusCode, 200, 'the password is unchanged')
  })
})
