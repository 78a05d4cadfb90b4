import t from 'tap'
import { db, post } from '../../support/app.js'
import { allMailsAfterClose, mailFor, registered, SUBJECTS, tokenOf } from '../../support/mail.js'
import { isVerified, login, me, userDoc } from '../../support/users.js'

t.test('GET /auth/verify/{token}', async (t) => {
  t.test('verifies the address once and keeps answering 200 for the same link', async (t) => {
    const { app, smtp, email, token } = await registered(t)
    t.equal(await isVerified(app, email), false)

    const first = await app.inject({ url: `/auth/verify/${token}` })
    t.equal(first.statusCode, 200)
    t.strictSame(first.json(), { detail: 'Email verified successfully' })
    t.equal(await isVerified(app, email), true)
    const bearer = await login(app, email)
    t.equal((await me(app, bearer)).json().is_verified, true, '/users/me shows it')
    const success = await mailFor(smtp, email, SUBJECTS.verified)
    t.notOk(success.link, 'the success mail carries no link')

    const again = await app.inject({ url: `/auth/verify/${token}/` })
    t.equal(again.statusCode, 200, 'the same link again (trailing slash too)')
    t.strictSame(again.json(), { detail: 'Email verified successfully' })
    const viaPost = await post(app, '/auth/verify', { token })
    t.equal(viaPost.statusCode, 200, 'and through POST')

    const mails = await allMailsAfterClose(app, smtp, email)
    t.strictSame(mails.map((m) => m.subject), [SUBJECTS.verify, SUBJECTS.verified], 'one success mail, not three')
  })

  t.test('refuses unknown, expired and wrong-purpose tokens', async (t) => {
    const { app, smtp, email, token } = await registered(t)
    const invalid = { detail: 'Invalid or expired verification token', status: 400 }

    const unknown = await app.inject({ url: `/auth/verify/${'A'.repeat(43)}` })
    t.equal(unknown.statusCode, 400, 'unknown token')
    t.match(unknown.json(), invalid)
    t.match(unknown.headers['content-type'], /^application\/problem\+json/)

    t.equal((await post(app, '/auth/forgot-password', { email })).statusCode, 200)
    const resetToken = tokenOf(await mailFor(smtp, email, SUBJECTS.reset))
    const wrongPurpose = await app.inject({ url: `/auth/verify/${resetToken}` })
    t.equal(wrongPurpose.statusCode, 400, 'a reset token is not a verification token')
    t.match(wrongPurpose.json(), invalid)

    const user = await userDoc(app, email)
    await db(app).collection('one_time_tokens').updateMany(
      { user_id: user!._id, purpose: 'verify-email' },
      { $set: { expires_at: new Date(Date.now() - 1000) } }
    )
    const expired = await app.inject({ url: `/auth/verify/${token}` })
    t.equal(expired.statusCode, 400, 'an expired token')
    t.match(expired.json(), invalid)
    t.equal(await isVerified(app, email), false, 'nothing was verified')

    const resetStillWorks = await post(app, `/auth/reset-password/${resetToken}`, { new_password: 'a brand new password' })
    t.equal(resetStillWorks.statusCode, 200, 'trying it at verify did not use up the reset token')
  })
})

t.test('POST /auth/verify', async (t) => {
  t.test('takes the token in the body', async (t) => {
    const { app, smtp, email, token } = await registered(t)
    const res = await post(app, '/auth/verify', { token })
    t.equal(res.statusCode, 200)
    t.strictSame(res.json(), { detail: 'Email verified successfully' })
    t.equal(await isVerified(app, email), true)
    await mailFor(smtp, email, SUBJECTS.verified)

    const unknown = await post(app, '/auth/verify', { token: 'no-such-token' })
    t.equal(unknown.statusCode, 400)
    t.equal(unknown.json().detail, 'Invalid or expired verification token')
    t.equal((await post(app, '/auth/verify', {})).statusCode, 422, 'missing token')
    t.equal((await post(app, '/auth/verify', { token: { $ne: null } })).statusCode, 422, 'an operator object')
  })
})
