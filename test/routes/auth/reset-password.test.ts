import t from 'tap'
import { db, post } from '../../support/app.js'
import { allMailsAfterClose, appWithMail, mailFor, resetToken, SUBJECTS, tokenDocs, tokenOf } from '../../support/mail.js'
import { login, loginForm, loginJson, me, PASSWORD, signUp, userDoc } from '../../support/users.js'

const NEW_PASSWORD = 'a whole new password 🔑'

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
    t.strictSame(weak.json().detail.map((e: { loc: string[] }) => e.loc), [['body', 'new_password']])
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

t.test('a completed reset lifts the lockout of the address', async (t) => {
  const { app, smtp } = await appWithMail(t, { VERIFICATION_RESEND_SECONDS: '0', LOGIN_MAX_FAILURES: '3' })
  const { email } = await signUp(app)
  for (let i = 0; i < 3; i++) t.equal((await loginForm(app, email, 'a guessed password')).statusCode, 401)
  t.equal((await loginForm(app, email, PASSWORD)).statusCode, 429, 'the address is locked out')

  const token = await resetToken(app, smtp, email)
  t.equal((await post(app, '/auth/reset-password', { token, new_password: NEW_PASSWORD })).statusCode, 200)
  t.equal((await loginForm(app, email, NEW_PASSWORD)).statusCode, 200, 'the owner logs in with the new password at once')
})

t.test('12 logins with the old password racing a reset: none keeps a working session, refresh included', async (t) => {
  const { app, smtp } = await appWithMail(t)
  const { email } = await signUp(app)
  const token = await resetToken(app, smtp, email)
  const [reset, ...logins] = await Promise.all([
    post(app, '/auth/reset-password', { token, new_password: NEW_PASSWORD }),
    ...Array.from({ length: 12 }, () => loginJson(app, email, PASSWORD))
  ])
  t.equal(reset!.statusCode, 200)
  const sessions = logins.filter((r) => r.statusCode === 200).map((r) => r.json())
  t.comment(`${sessions.length} of 12 logins answered 200`)
  for (const { access_token: access, refresh_token: refresh } of sessions) {
    t.equal((await me(app, access)).statusCode, 401, 'the access token is dead')
    t.equal((await post(app, '/auth/refresh', { refresh_token: refresh })).statusCode, 401, 'and so is its refresh token')
  }
  t.equal(await db(app).collection('sessions').countDocuments({ revoked_at: null }), 0, 'no live session of the old password')
  t.equal((await loginForm(app, email, NEW_PASSWORD)).statusCode, 200, 'the new password works')
})
