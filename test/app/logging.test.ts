import t from 'tap'
import { redactUrl } from '../../lib/redact.js'
import { build } from '../support/app.js'
import { signUp } from '../support/users.js'

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
