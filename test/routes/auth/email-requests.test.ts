import t from 'tap'
import { build, db, post } from '../../support/app.js'
import { allMailsAfterClose, appWithMail, mailFor, registered, SUBJECTS, tokenDocs, tokenOf } from '../../support/mail.js'
import { entryWhen, outbox } from '../../support/outbox.js'
import { startSmtp } from '../../support/smtp.js'
import { until } from '../../support/until.js'
import { isVerified, loginForm, me, PASSWORD, register, signUp, uniqueEmail, userDoc } from '../../support/users.js'

const RESET_DETAIL = 'If the address belongs to an account, a password reset email is on its way.'

const GENERIC_DETAIL = 'If the address belongs to an unverified account, a verification email is on its way.'

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
    t.match(missing.json(), { status: 422, detail: [{ loc: ['query', 'email'] }] })
    t.equal((await post(app, '/auth/resend-verification', {})).statusCode, 422, 'empty JSON body')
    t.equal((await post(app, '/auth/resend-verification?email=nope')).statusCode, 422, 'not an address')
    t.equal((await post(app, '/auth/resend-verification', { email: { $gt: '' } })).statusCode, 422, 'an operator object')
  })
})
