import t from 'tap'
import { build, post } from '../support/app.js'
import { mailFor, SUBJECTS, tokenOf } from '../support/mail.js'
import { startSmtp } from '../support/smtp.js'
import { bearer, login, loginForm, me, PASSWORD, register, uniqueEmail } from '../support/users.js'
import { rateLimits } from '../../lib/auth-limits.js'

t.test('per-IP rate limits (RATE_LIMIT_ENABLED)', async (t) => {
  t.test('login answers 429 with Retry-After once the limit is spent', async (t) => {
    const app = await build(t, { RATE_LIMIT_ENABLED: 'true' })
    const email = uniqueEmail('limited')
    t.equal((await register(app, email)).statusCode, 201)

    const max = rateLimits.login.rateLimit.max
    const allowed = []
    for (let i = 0; i < max; i++) allowed.push((await loginForm(app, email, i % 2 ? PASSWORD : 'wrong password')).statusCode)
    t.strictSame([...new Set(allowed)].sort(), [200, 401], `the first ${max} logins are answered`)

    const limited = await loginForm(app, email, PASSWORD)
    t.equal(limited.statusCode, 429, 'even with the right password')
    t.match(limited.headers['retry-after'], /^\d+$/)
    t.ok(Number(limited.headers['retry-after']) > 0)
    t.match(limited.headers['content-type'], /^application\/problem\+json/)
    const body = limited.json()
    t.strictSame(Object.keys(body).sort(), ['detail', 'request_id', 'status', 'title', 'type'])
    t.match(body, { status: 429, title: 'Too Many Requests', detail: /\S/ })
    t.notOk(limited.body.includes('access_token'))
    t.equal(limited.headers['x-request-id'], body.request_id, 'X-Request-Id')
    t.equal(limited.headers['cache-control'], 'no-store', 'no-store')

    const json = await post(app, '/auth/login', { email, password: PASSWORD })
    t.equal(json.statusCode, 429, 'the JSON form shares the bucket')
  })

  t.test('the limits are off when RATE_LIMIT_ENABLED is false', async (t) => {
    // The per-address failure limit is not a per-IP limiter; set it out of reach to see the IP limit alone.
    const app = await build(t, { RATE_LIMIT_ENABLED: 'false', LOGIN_MAX_FAILURES: '1000' })
    const email = uniqueEmail('unlimited')
    await register(app, email)
    const statuses = []
    for (let i = 0; i <= rateLimits.login.rateLimit.max; i++) statuses.push((await loginForm(app, email, 'wrong password')).statusCode)
    t.strictSame([...new Set(statuses)], [401], 'never 429')
  })
})

t.test('a whole flow leaves no password, access token or one-time token in the log', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, { ...smtp.env, LOG_LEVEL: 'debug', VERIFICATION_RESEND_SECONDS: '0' })
  const email = uniqueEmail('logs')
  const secrets: string[] = [PASSWORD]

  t.equal((await register(app, email)).statusCode, 201)
  const verifyToken = tokenOf(await mailFor(smtp, email, SUBJECTS.verify))
  secrets.push(verifyToken)
  t.equal((await app.inject({ url: `/auth/verify/${verifyToken}` })).statusCode, 200)
  t.equal((await app.inject({ url: `/auth/verify/${verifyToken}` })).statusCode, 200)

  const accessToken = await login(app, email)
  secrets.push(accessToken)
  t.equal((await me(app, accessToken)).statusCode, 200)
  const jsonLogin = await post(app, '/auth/login', { email, password: PASSWORD })
  secrets.push(jsonLogin.json().access_token)
  t.equal((await loginForm(app, email, 'a wrong password typed')).statusCode, 401)
  secrets.push('a wrong password typed')

  const changed = 'the changed password'
  secrets.push(changed)
  t.equal((await post(app, '/auth/change-password', { current_password: PASSWORD, new_password: changed }, bearer(accessToken))).statusCode, 200)

  t.equal((await post(app, '/auth/forgot-password', { email })).statusCode, 200)
  const resetA = tokenOf(await mailFor(smtp, email, SUBJECTS.reset, 1))
  t.equal((await post(app, '/auth/forgot-password', { email })).statusCode, 200)
  const resetB = tokenOf(await mailFor(smtp, email, SUBJECTS.reset, 2))
  secrets.push(resetA, resetB)
  const viaQuery = 'reset through the query'
  const viaBody = 'reset through the body'
  secrets.push(viaQuery, viaBody)
  t.equal((await post(app, `/auth/reset-password/${resetA}`, { new_password: viaBody })).statusCode, 400, 'voided by the newer link')
  t.equal((await post(app, `/auth/reset-password/${resetB}?new_password=${encodeURIComponent(viaQuery)}`, {})).statusCode, 200)
  t.equal((await post(app, '/auth/reset-password', { token: resetB, new_password: viaBody })).statusCode, 400, 'used')
  t.equal((await me(app, accessToken)).statusCode, 401, 'a revoked token, logged as rejected')

  await mailFor(smtp, email, SUBJECTS.changed, 2)
  const logs = app.logs.text()
  t.ok(app.logs.lines.length > 10, 'the flow was logged')
  t.ok(logs.includes('user registered') && logs.includes('password changed') && logs.includes('login failed'), 'the log tells the flow')
  for (const secret of secrets) {
    for (const form of new Set([secret, encodeURIComponent(secret), secret.replace(/ /g, '+')])) {
      t.notOk(logs.includes(form), `no ${form.slice(0, 12)}… in the log`)
    }
  }
  for (const mail of smtp.mails.filter((m) => m.link)) t.notOk(logs.includes(mail.link!), 'no mail link in the log')
})
