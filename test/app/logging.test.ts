import t from 'tap'
import { redactUrl } from '../../lib/redact.js'
import { build, post } from '../support/app.js'
import { mailFor, SUBJECTS, tokenOf } from '../support/mail.js'
import { startSmtp } from '../support/smtp.js'
import { bearer, login, loginForm, me, PASSWORD, register, signUp, uniqueEmail } from '../support/users.js'

t.test('token-bearing URLs are logged without the token', async (t) => {
  const app = await build(t)
  const token = 'SECRETtokenVALUE123456789'
  await app.inject({ url: `/auth/verify/${token}` })
  await app.inject({ method: 'POST', url: `/auth/reset-password/${token}?new_password=Hunter2Hunter2` })
  await app.inject({ method: 'POST', url: '/auth/forgot-password?email=someone@example.com' })
  const text = app.logs.text()
  t.notMatch(text, token)
  t.notMatch(text, 'Hunter2Hunter2')
  t.notMatch(text, 'someone@example.com')
  t.match(text, '/auth/verify/[redacted]', 'the route is still visible')
  t.match(text, 'new_password=[redacted]')
})

t.test('no bearer token or password reaches the log', async (t) => {
  const app = await build(t)
  const { headers, token, password } = await signUp(app)
  await app.inject({ url: '/users/me', headers })
  await app.inject({ url: '/users/me', headers: { authorization: 'Bearer not-a-real-token' } })
  const text = app.logs.text()
  t.notMatch(text, token)
  t.notMatch(text, password)
  t.notMatch(text, 'not-a-real-token')
  t.ok(app.logs.lines.every((l) => typeof l.time === 'string' && (l.time as string).endsWith('Z')), 'UTC ISO timestamps')
  const requestLines = app.logs.lines.filter((l) => l.msg === 'request completed')
  t.ok(requestLines.length > 0 && requestLines.every((l) => typeof l.request_id === 'string'), 'request id on request lines')
})

t.test('redactUrl keeps harmless parts', async (t) => {
  t.equal(redactUrl('/chat/?skip=0&limit=20'), '/chat/?skip=0&limit=20')
  t.equal(redactUrl('/auth/reset-password/abc?new_password=x&x=1'), '/auth/reset-password/[redacted]?new_password=[redacted]&x=1')
  t.equal(redactUrl('/AUTH/VERIFY/abc'), '/AUTH/VERIFY/[redacted]')
  t.equal(redactUrl('/auth/resend-verification?Email=a%40b.c'), '/auth/resend-verification?Email=[redacted]')
})

t.test('a whole flow leaves no password, access token or one-time token in the log', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, { ...smtp.env, LOG_LEVEL: 'debug', VERIFICATION_RESEND_SECONDS: '0' })
  const email = uniqueEmail('logs')
  const secrets: string[] = [PASSWORD]

  t.equal((await register(app, email)).statusCode, 200)
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
