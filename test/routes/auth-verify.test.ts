import t from 'tap'
import { build, db, post } from '../support/app.js'
import { allMailsAfterClose, mailFor, registered, SUBJECTS, tokenDocs, tokenOf } from '../support/mail.js'
import { outbox } from '../support/outbox.js'
import { startSmtp } from '../support/smtp.js'
import { until } from '../support/until.js'
import { isVerified, login, me, register, uniqueEmail, userDoc } from '../support/users.js'

const GENERIC_DETAIL = 'If the address belongs to an unverified account, a verification email is on its way.'

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

t.test('POST /auth/resend-verification', async (t) => {
  t.test('takes the address as the original\'s query parameter, without a body', async (t) => {
    const { app, smtp, email } = await registered(t, { VERIFICATION_RESEND_SECONDS: '0' })
    const res = await post(app, `/auth/resend-verification?email=${encodeURIComponent(email.toUpperCase())}`)
    t.equal(res.statusCode, 200, res.body)
    t.strictSame(res.json(), { detail: GENERIC_DETAIL })
    const mail = await mailFor(smtp, email, SUBJECTS.verify, 2)
    t.equal((await app.inject({ url: `/auth/verify/${tokenOf(mail)}` })).statusCode, 200, 'the new link works')
  })

  t.test('sends a new link by JSON; the new link voids the older ones', async (t) => {
    const { app, smtp, email, token: first } = await registered(t, { VERIFICATION_RESEND_SECONDS: '0' })

    const again = await post(app, '/auth/resend-verification', { email: ` ${email.toUpperCase()}` })
    t.equal(again.statusCode, 200)
    t.strictSame(again.json(), { detail: GENERIC_DETAIL })
    const second = tokenOf(await mailFor(smtp, email, SUBJECTS.verify, 2))
    t.not(second, first)

    const third = await post(app, '/auth/resend-verification', { email })
    t.equal(third.statusCode, 200)
    t.strictSame(third.json(), { detail: GENERIC_DETAIL })
    const newest = tokenOf(await mailFor(smtp, email, SUBJECTS.verify, 3))

    const user = await userDoc(app, email)
    t.equal((await tokenDocs(app, user!._id, 'verify-email')).filter((d) => d.state === 'active').length, 1, 'one live link')

    for (const old of [first, second]) {
      const res = await app.inject({ url: `/auth/verify/${old}` })
      t.equal(res.statusCode, 400, 'an older link no longer works')
      t.equal(res.json().detail, 'Invalid or expired verification token')
    }
    t.equal((await app.inject({ url: `/auth/verify/${newest}` })).statusCode, 200, 'the newest link works')
    t.equal(await isVerified(app, email), true)
  })

  t.test('answers the same for unknown, verified and throttled addresses, and sends nothing', async (t) => {
    const smtp = await startSmtp(t)
    const app = await build(t, smtp.env) // default VERIFICATION_RESEND_SECONDS: 120
    const fresh = uniqueEmail('throttled')
    const verified = uniqueEmail('verified')
    const unknown = uniqueEmail('unknown')
    await register(app, fresh)
    await register(app, verified)
    await mailFor(smtp, fresh, SUBJECTS.verify)
    const verifiedToken = tokenOf(await mailFor(smtp, verified, SUBJECTS.verify))
    t.equal((await app.inject({ url: `/auth/verify/${verifiedToken}` })).statusCode, 200)

    const throttledRes = await post(app, '/auth/resend-verification', { email: fresh })
    const verifiedRes = await post(app, '/auth/resend-verification', { email: verified })
    const unknownRes = await post(app, '/auth/resend-verification', { email: unknown })
    const unknownAgain = await post(app, '/auth/resend-verification', { email: unknown.toUpperCase() })
    for (const res of [throttledRes, verifiedRes, unknownRes, unknownAgain]) {
      t.equal(res.statusCode, 200)
      t.strictSame(res.json(), { detail: GENERIC_DETAIL })
    }

    const mails = await allMailsAfterClose(app, smtp)
    t.equal(mails.filter((m) => m.to === fresh).length, 1, 'right after sign-up a resend sends nothing')
    t.equal(mails.filter((m) => m.to === unknown).length, 0, 'nothing to an unknown address')
    t.strictSame(mails.filter((m) => m.to === verified).map((m) => m.subject), [SUBJECTS.verify, SUBJECTS.verified], 'no new link for a verified address')
  })

  t.test('sends nothing to a verified address even without throttling', async (t) => {
    const { app, smtp, email, token } = await registered(t, { VERIFICATION_RESEND_SECONDS: '0' })
    t.equal((await app.inject({ url: `/auth/verify/${token}` })).statusCode, 200)
    await mailFor(smtp, email, SUBJECTS.verified)

    const res = await post(app, '/auth/resend-verification', { email })
    t.equal(res.statusCode, 200)
    t.strictSame(res.json(), { detail: GENERIC_DETAIL })
    const asked = await until(() => outbox(db(app)).findOne({ to: email, request_id: res.headers['x-request-id'] as string, status: { $in: ['sent', 'skipped'] } }),
      10_000, 'the resend to be handled')
    t.equal(asked.status, 'skipped', 'the request was recorded, and skipped: the address is verified')
    const user = (await userDoc(app, email))!
    t.equal((await tokenDocs(app, user._id, 'verify-email')).filter((d) => d.state === 'active').length, 0, 'no new link')
    const mails = await allMailsAfterClose(app, smtp, email)
    t.strictSame(mails.map((m) => m.subject), [SUBJECTS.verify, SUBJECTS.verified])
  })

  t.test('a missing or invalid address is a 422', async (t) => {
    const app = await build(t)
    const missing = await post(app, '/auth/resend-verification')
    t.equal(missing.statusCode, 422)
    t.match(missing.json(), { status: 422, errors: [{ loc: ['query', 'email'] }] })
    t.equal((await post(app, '/auth/resend-verification', {})).statusCode, 422, 'empty JSON body')
    t.equal((await post(app, '/auth/resend-verification?email=nope')).statusCode, 422, 'not an address')
    t.equal((await post(app, '/auth/resend-verification', { email: { $gt: '' } })).statusCode, 422, 'an operator object')
  })
})
