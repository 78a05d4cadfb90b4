/**
 * Tests for SECURITY.md items that the code meets but no other test showed (docs/SECURITY-REVIEW.md
 * lists every item with its test). Each test is named after its checklist item.
 */
import { createHash, createHmac, createSign, generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { rateLimits } from '../../plugins/app/auth/limits.js'
import { build, db, post, TEST_SECRET, type TestApp } from '../support/app.js'
import { mailFor, resetToken, SUBJECTS, tokenDocs, tokenOf } from '../support/mail.js'
import { entryWhen, outbox } from '../support/outbox.js'
import { runServer } from '../support/service.js'
import { startSilentServer, startSmtp } from '../support/smtp.js'
import { base64url, claimsOf, headerOf, hmacToken, ISSUER, validClaims, validHeader } from '../support/tokens.js'
import { until } from '../support/until.js'
import { bearer, login, loginForm, loginJson, me, PASSWORD, register, signUp, uniqueEmail, userDoc } from '../support/users.js'

const NEW_PASSWORD = 'a brand new password for the review'
const THIRD_PASSWORD = 'the password set by a reset link'

/** The original's 401 for a token that does not stand. */
function assertInvalidToken (t: Test, res: LightMyRequestResponse, name: string) {
  t.equal(res.statusCode, 401, `${name}: 401`)
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', `${name}: invalid_token`)
  t.equal(res.json().detail, 'Could not validate credentials', `${name}: detail`)
}

/** Headers that may differ between two answers that must otherwise be the same. */
const perRequestHeaders = new Set(['date', 'x-request-id', 'x-ratelimit-remaining', 'x-ratelimit-reset'])
function stableHeaders (res: LightMyRequestResponse) {
  return Object.fromEntries(Object.entries(res.headers).filter(([name]) => !perRequestHeaders.has(name)))
}

t.test('item 1: every hash has its own 16-byte salt and a 32-byte tag', async (t) => {
  const app = await build(t)
  const [a, b] = [uniqueEmail('salt-a'), uniqueEmail('salt-b')]
  t.equal((await register(app, a)).statusCode, 200)
  t.equal((await register(app, b)).statusCode, 200)
  const parts = await Promise.all([a, b].map(async (email) => (await userDoc(app, email))!.password_hash.split('$')))
  for (const [, id, , , salt, tag] of parts) {
    t.equal(id, 'argon2id')
    t.equal(Buffer.from(salt!, 'base64').length, 16, 'a 16-byte salt')
    t.equal(Buffer.from(tag!, 'base64').length, 32, 'a 32-byte hash')
  }
  t.not(parts[0]![4], parts[1]![4], 'one password, two salts')
})

t.test('items 2 and 16: the real process refuses to start in production with a weak argon2 cost or a short secret', async (t) => {
  const production = { NODE_ENV: 'production', SECRET_KEY: TEST_SECRET }
  const weakMemory = await runServer(t, { ...production, ARGON2_MEMORY_KIB: '8192' })
  t.equal(weakMemory.code, 1, 'm=8192 KiB: exit code 1')
  t.match(weakMemory.output, /Invalid configuration:\n\s+- ARGON2_MEMORY_KIB: must be >= 19456/, 'the setting is named')
  t.notMatch(weakMemory.output, /Server listening/, 'it never listened')

  const weakTime = await runServer(t, { ...production, ARGON2_TIME_COST: '1' })
  t.equal(weakTime.code, 1, 't=1: exit code 1')
  t.match(weakTime.output, /ARGON2_TIME_COST: must be >= 2/)

  const shortSecret = await runServer(t, { ...production, SECRET_KEY: 'sixteen-chars-00' })
  t.equal(shortSecret.code, 1, 'a 16-character secret: exit code 1')
  t.match(shortSecret.output, /SECRET_KEY: must be at least 32 characters/)
  t.notMatch(shortSecret.output, /Server listening/)
})

t.test('item 6: wrong current passwords at change-password feed the login failure counter', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '3' })
  const { email, token } = await signUp(app)
  const change = (current: string) => post(app, '/auth/change-password', { current_password: current, new_password: NEW_PASSWORD }, bearer(token))

  for (let i = 1; i <= 3; i++) {
    const wrong = await change(`wrong password ${i}`)
    t.equal(wrong.statusCode, 401, `wrong current password ${i}: 401`)
    t.equal(wrong.json().detail, 'Current password is incorrect')
  }
  const blocked = await change(PASSWORD)
  t.equal(blocked.statusCode, 429, 'after the limit even the right current password is refused')
  t.match(blocked.headers['retry-after'], /^[1-9]\d*$/)
  t.match(blocked.headers['content-type'], /^application\/problem\+json/)
  const loginBlocked = await loginForm(app, email, PASSWORD)
  t.equal(loginBlocked.statusCode, 429, 'and so is a login: one counter per address')
  t.notOk(loginBlocked.body.includes('access_token'))
  t.equal((await loginForm(app, email, NEW_PASSWORD)).statusCode, 429, 'the new password was never set, and the address stays blocked')
})

t.test('item 6: 30 parallel wrong current passwords at change-password and DELETE /users/me: only the limit is checked', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '4' })
  for (const [name, attempt] of [
    ['change-password', (headers: Record<string, string>, i: number) => post(app, '/auth/change-password', { current_password: `wrong ${i}`, new_password: NEW_PASSWORD }, headers)],
    ['DELETE /users/me', (headers: Record<string, string>, i: number) => app.inject({ method: 'DELETE', url: '/users/me', headers, payload: { password: `wrong ${i}` } })]
  ] as const) {
    const { email, headers } = await signUp(app)
    const statuses = (await Promise.all(Array.from({ length: 30 }, (_, i) => attempt(headers, i)))).map((r) => r.statusCode)
    t.equal(statuses.filter((s) => s === 401).length, 4, `${name}: 4 checked (401)`)
    t.equal(statuses.filter((s) => s === 429).length, 26, `${name}: 26 refused unchecked (429)`)
    t.equal((await loginForm(app, email, PASSWORD)).statusCode, 429, `${name}: the address is locked out`)
  }
})

t.test('item 8: token answers are exactly the token fields, with Cache-Control: no-store and Pragma: no-cache', async (t) => {
  const app = await build(t)
  const email = uniqueEmail('pragma')
  await register(app, email)
  const form = await loginForm(app, email, PASSWORD)
  const refreshed = await post(app, '/auth/refresh', { refresh_token: form.json().refresh_token })
  for (const [name, res] of [['login', form], ['refresh', refreshed]] as const) {
    t.equal(res.statusCode, 200, name)
    t.strictSame(Object.keys(res.json()).sort(), ['access_token', 'expires_at', 'expires_in', 'refresh_token', 'token_type'], `${name}: key set`)
    t.equal(res.json().token_type, 'bearer')
    t.equal(res.headers['cache-control'], 'no-store', `${name}: Cache-Control`)
    t.equal(res.headers.pragma, 'no-cache', `${name}: Pragma`)
  }
})

t.test('item 12: every auth route has its own per-IP limit, and X-Forwarded-For does not reset it', async (t) => {
  const app = await build(t, { RATE_LIMIT_ENABLED: 'true', LOGIN_MAX_FAILURES: '1000' })
  let n = 0
  const spoofed = () => ({ 'x-forwarded-for': `203.0.113.${n++ % 250}`, 'x-real-ip': `198.51.100.${n % 250}` })

  const logins = []
  for (let i = 0; i < 100; i++) {
    logins.push(await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { ...spoofed(), 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username: uniqueEmail('nobody'), password: 'wrong password' }).toString()
    }))
  }
  const max = rateLimits.login.rateLimit.max
  t.strictSame(logins.slice(0, max).map((r) => r.statusCode), Array(max).fill(401), `login: the first ${max} are answered`)
  t.strictSame(logins.slice(max).map((r) => r.statusCode), Array(100 - max).fill(429), 'the other 80 get 429 whatever X-Forwarded-For says')
  t.ok(logins.slice(max).every((r) => Number(r.headers['retry-after']) > 0), 'each with Retry-After')

  const routes: Array<[string, number, () => Promise<LightMyRequestResponse>]> = [
    ['POST /auth/register', rateLimits.register.rateLimit.max,
      () => app.inject({ method: 'POST', url: '/auth/register', headers: spoofed(), payload: { email: uniqueEmail('flood'), password: PASSWORD } })],
    ['POST /auth/forgot-password', rateLimits.mailRequest.rateLimit.max,
      () => app.inject({ method: 'POST', url: '/auth/forgot-password', headers: spoofed(), payload: { email: uniqueEmail('flood') } })],
    ['POST /auth/resend-verification', rateLimits.mailRequest.rateLimit.max,
      () => app.inject({ method: 'POST', url: '/auth/resend-verification', headers: spoofed(), payload: { email: uniqueEmail('flood') } })],
    ['GET /auth/verify/{token}', rateLimits.tokenUse.rateLimit.max,
      () => app.inject({ url: `/auth/verify/${randomBytes(32).toString('base64url')}`, headers: spoofed() })],
    ['POST /auth/verify', rateLimits.tokenUse.rateLimit.max,
      () => app.inject({ method: 'POST', url: '/auth/verify', headers: spoofed(), payload: { token: randomBytes(32).toString('base64url') } })],
    ['POST /auth/reset-password/{token}', rateLimits.tokenUse.rateLimit.max,
      () => app.inject({ method: 'POST', url: `/auth/reset-password/${randomBytes(32).toString('base64url')}`, headers: spoofed(), payload: { new_password: NEW_PASSWORD } })],
    ['POST /auth/reset-password', rateLimits.tokenUse.rateLimit.max,
      () => app.inject({ method: 'POST', url: '/auth/reset-password', headers: spoofed(), payload: { token: randomBytes(32).toString('base64url'), new_password: NEW_PASSWORD } })]
  ]
  for (const [name, limit, send] of routes) {
    const statuses: number[] = []
    let last: LightMyRequestResponse | undefined
    for (let i = 0; i <= limit; i++) {
      last = await send()
      statuses.push(last.statusCode)
    }
    t.notOk(statuses.slice(0, limit).includes(429), `${name}: the first ${limit} are answered (${[...new Set(statuses.slice(0, limit))].join(',')})`)
    t.equal(last!.statusCode, 429, `${name}: request ${limit + 1} gets 429`)
    t.ok(Number(last!.headers['retry-after']) > 0, `${name}: with Retry-After`)
  }
})

t.test('item 17: tokens of any algorithm but HS256 are refused, key confusion included', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const { sub, sid } = claimsOf(alice.token)
  const claims = validClaims(sub, sid)
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const signed = (alg: string, sign: (input: string) => Buffer) => {
    const input = `${base64url({ alg, typ: 'at+jwt' })}.${base64url(claims)}`
    return `${input}.${sign(input).toString('base64url')}`
  }
  const rsaPublicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString()

  t.equal((await me(app, hmacToken(validHeader, claims))).statusCode, 200, 'control: HS256 with the secret and these claims works')
  const cases: Record<string, string> = {
    'HS384 with the right secret': hmacToken({ alg: 'HS384', typ: 'at+jwt' }, claims, TEST_SECRET, 'sha384'),
    'RS256 signed with an attacker key': signed('RS256', (input) => createSign('RSA-SHA256').update(input).sign(rsa.privateKey)),
    'ES256 signed with an attacker key': signed('ES256', (input) => createSign('SHA256').update(input).sign({ key: ec.privateKey, dsaEncoding: 'ieee-p1363' })),
    'RS256 header over an HMAC with the secret': signed('RS256', (input) => createHmac('sha256', TEST_SECRET).update(input).digest()),
    'RS256 header over an HMAC keyed with a public key': signed('RS256', (input) => createHmac('sha256', rsaPublicPem).update(input).digest()),
    'alg "none" with an HMAC signature kept': `${base64url({ alg: 'none', typ: 'at+jwt' })}.${base64url(claims)}.${hmacToken(validHeader, claims).split('.')[2]}`
  }
  for (const [name, token] of Object.entries(cases)) assertInvalidToken(t, await me(app, token), name)
  t.equal((await me(app, alice.token)).statusCode, 200, 'the real token still works')
})

t.test('item 18: keys named in the token header (jwk, jku, x5u, x5c, kid) are never used', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const { sub, sid } = claimsOf(alice.token)
  const claims = validClaims(sub, sid)
  const attacker = randomBytes(32)
  const cert = 'MIIBszCCAVmgAwIBAgIUY2hhdC1hdXRoLWFwaS1yZXZpZXcwCgYIKoZIzj0EAwIw'
  const cases: Record<string, string> = {
    'embedded jwk, signed with it': hmacToken({ ...validHeader, jwk: { kty: 'oct', k: attacker.toString('base64url') } }, claims, attacker),
    'jku pointing elsewhere, signed with the attacker key': hmacToken({ ...validHeader, jku: 'http://127.0.0.1:9/keys.json' }, claims, attacker),
    'x5u pointing elsewhere': hmacToken({ ...validHeader, x5u: 'http://127.0.0.1:9/cert.pem' }, claims, attacker),
    'x5c with an attacker certificate': hmacToken({ ...validHeader, x5c: [cert] }, claims, attacker),
    'kid "../../dev/null" signed with an empty key': hmacToken({ ...validHeader, kid: '../../dev/null' }, claims, ''),
    'kid "../../x" signed with the attacker key': hmacToken({ ...validHeader, kid: '../../x' }, claims, attacker),
    'kid with an operator, signed with the attacker key': hmacToken({ ...validHeader, kid: "x' || '1'='1" }, claims, attacker)
  }
  for (const [name, token] of Object.entries(cases)) assertInvalidToken(t, await me(app, token), name)
  t.notOk(app.logs.lines.some((l) => Number(l.level) >= 50), 'no error was logged while refusing them')
})

t.test('item 19: tokens live ACCESS_TOKEN_EXPIRE_MINUTES; exp, iat, iss, aud and sub are required, typ is checked, and 31 s past exp is refused', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const { sub, sid } = claimsOf(alice.token)
  const now = Math.floor(Date.now() / 1000)
  const without = (name: string) => Object.fromEntries(Object.entries(validClaims(sub, sid)).filter(([key]) => key !== name))

  const issued = claimsOf(alice.token)
  t.strictSame(headerOf(alice.token), { alg: 'HS256', typ: 'at+jwt' }, 'HS256, typed at+jwt')
  t.match(issued, { iss: ISSUER, aud: ISSUER, sub: alice.user.id })
  t.equal(Number(issued.exp) - Number(issued.iat), 30 * 60, 'the access token lives 30 minutes, as expires_in says')

  t.equal((await me(app, hmacToken(validHeader, { ...validClaims(sub, sid), iat: now - 600, exp: now - 10 }))).statusCode, 200,
    'control: 10 s past exp is within the 30 s leeway')
  const cases: Record<string, string> = {
    'no exp': hmacToken(validHeader, without('exp')),
    'no iat': hmacToken(validHeader, without('iat')),
    'no sub': hmacToken(validHeader, without('sub')),
    'no iss': hmacToken(validHeader, without('iss')),
    'no aud': hmacToken(validHeader, without('aud')),
    'no typ': hmacToken({ alg: 'HS256' }, validClaims(sub, sid)),
    'expired 31 s ago': hmacToken(validHeader, { ...validClaims(sub, sid), iat: now - 600, exp: now - 31 }),
    'not valid before an hour from now': hmacToken(validHeader, { ...validClaims(sub, sid), nbf: now + 3600 })
  }
  for (const [name, token] of Object.entries(cases)) assertInvalidToken(t, await me(app, token), name)
})

t.test('item 21: a token in the query string is never read', async (t) => {
  const app = await build(t)
  const { token } = await signUp(app)
  for (const [method, url] of [['GET', '/users/me'], ['GET', '/chat/'], ['POST', '/chat/stream']] as const) {
    const res = await app.inject({ method, url: `${url}?access_token=${token}`, ...(method === 'POST' ? { payload: { message: 'hi' } } : {}) })
    t.equal(res.statusCode, 401, `${method} ${url}?access_token=: 401`)
    t.equal(res.json().detail, 'Not authenticated', 'as if no credentials were sent')
    t.equal(res.headers['www-authenticate'], 'Bearer')
  }
  t.equal(await db(app).collection('chats').countDocuments({}), 0, 'nothing was stored')
  t.notOk(app.logs.text().includes(token), 'and the token was not logged')
})

t.test('item 23: once mailed, the raw link tokens are in no stored document; the token store keeps their SHA-256', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, smtp.env)
  const email = uniqueEmail('at-rest')
  t.equal((await register(app, email)).statusCode, 200)
  const verify = tokenOf(await mailFor(smtp, email, SUBJECTS.verify))
  const reset = await resetToken(app, smtp, email)
  await until(async () => await outbox(db(app)).countDocuments({ to: email, status: 'sent' }) === 2, 10_000, 'both mails to be marked sent')

  for (const [purpose, token] of [['verify-email', verify], ['reset-password', reset]] as const) {
    t.equal(Buffer.from(token, 'base64url').length, 32, `${purpose}: 32 random bytes, base64url`)
    const docs = await tokenDocs(app, (await userDoc(app, email))!._id, purpose)
    t.equal(docs.length, 1)
    t.equal(docs[0]!.token_hash, createHash('sha256').update(token).digest('base64url'), `${purpose}: stored as its SHA-256`)
    t.match(docs[0], { purpose, state: 'active', used_at: null, expires_at: Date, user_id: Object })
  }
  const collections = await db(app).listCollections().toArray()
  t.ok(collections.length >= 5, `${collections.length} collections searched`)
  for (const { name } of collections) {
    const text = JSON.stringify(await db(app).collection(name).find({}).toArray())
    for (const token of [verify, reset]) t.notOk(text.includes(token), `${name}: no raw token`)
  }
})

t.test('item 24: mail-link and refresh tokens do not work as bearer tokens', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, smtp.env)
  const { email } = await signUp(app)
  const verify = tokenOf(await mailFor(smtp, email, SUBJECTS.verify))
  const reset = await resetToken(app, smtp, email)
  const refresh = (await loginForm(app, email, PASSWORD)).json().refresh_token as string
  for (const [name, token] of [['verification token', verify], ['reset token', reset], ['refresh token', refresh]] as const) {
    assertInvalidToken(t, await me(app, token), name)
  }
  t.equal((await post(app, `/auth/reset-password/${reset}`, { new_password: NEW_PASSWORD })).statusCode, 200, 'the reset token still works where it belongs')
})

t.test('item 25: by default reset links live 60 minutes and verification links 24 hours', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, smtp.env)
  const { email } = await signUp(app)
  await resetToken(app, smtp, email)
  const lifetime = async (purpose: 'verify-email' | 'reset-password') => {
    const [doc] = await tokenDocs(app, (await userDoc(app, email))!._id, purpose)
    return doc!.expires_at.getTime() - doc!.created_at.getTime()
  }
  t.equal(await lifetime('reset-password'), 60 * 60_000)
  t.equal(await lifetime('verify-email'), 24 * 3_600_000)
})

t.test('item 27: a password change voids unused reset links', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, { ...smtp.env, VERIFICATION_RESEND_SECONDS: '0' })
  const { email, token } = await signUp(app)
  const reset = await resetToken(app, smtp, email)
  const changed = await post(app, '/auth/change-password', { current_password: PASSWORD, new_password: NEW_PASSWORD }, bearer(token))
  t.equal(changed.statusCode, 200)
  const late = await post(app, `/auth/reset-password/${reset}`, { new_password: 'the link tries afterwards' })
  t.equal(late.statusCode, 400, 'the reset link died with the change')
  t.equal(late.json().detail, 'Invalid or expired reset token')
  t.equal((await loginForm(app, email, NEW_PASSWORD)).statusCode, 200, 'the changed password stands')
})

t.test('item 28: forgot-password answers unknown, unverified and verified addresses alike, and changes no account', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, smtp.env)
  const unverified = await signUp(app)
  const verified = await signUp(app)
  const verifyToken = tokenOf(await mailFor(smtp, verified.email, SUBJECTS.verify))
  t.equal((await app.inject({ url: `/auth/verify/${verifyToken}` })).statusCode, 200)
  const before = await Promise.all([unverified.email, verified.email].map((e) => userDoc(app, e)))

  const answers = [
    await post(app, '/auth/forgot-password', { email: uniqueEmail('stranger') }),
    await post(app, '/auth/forgot-password', { email: unverified.email }),
    await post(app, '/auth/forgot-password', { email: verified.email })
  ]
  for (const res of answers) {
    t.equal(res.statusCode, 200)
    t.equal(res.body, answers[0]!.body, 'the same body, byte for byte')
    t.strictSame(stableHeaders(res), stableHeaders(answers[0]!), 'the same headers but Date and request id')
  }
  const after = await Promise.all([unverified.email, verified.email].map((e) => userDoc(app, e)))
  t.strictSame(after, before, 'both accounts unchanged')
  for (const session of [unverified.token, verified.token]) t.equal((await me(app, session)).statusCode, 200, 'sessions stay')
})

t.test('item 29: five forgot-password requests: five identical answers, one reset mail, across instances too', async (t) => {
  const app = await build(t)
  const { email } = await signUp(app)
  const answers = []
  for (let i = 0; i < 5; i++) answers.push(await post(app, '/auth/forgot-password', { email }))
  t.strictSame(answers.map((r) => r.statusCode), [200, 200, 200, 200, 200])
  t.equal(new Set(answers.map((r) => r.body)).size, 1, 'identical bodies')

  const other = await build(t, { DATABASE_NAME: app.env.DATABASE_NAME! })
  const fromOther = await post(other, '/auth/forgot-password', { email })
  t.equal(fromOther.body, answers[0]!.body, 'another instance answers the same')
  t.equal(await outbox(db(app)).countDocuments({ to: email, kind: 'reset-password' }), 1, 'one reset mail recorded in all')
  await until(() => outbox(db(app)).findOne({ to: email, kind: 'reset-password', status: 'sent' }), 10_000, 'the reset mail to go out')
  t.equal(await db(app).collection('one_time_tokens').countDocuments({ purpose: 'reset-password' }), 1, 'one reset token')
})

t.test('item 30: mail links come from FRONTEND_URL, never from Host or X-Forwarded-Host', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, { ...smtp.env, FRONTEND_URL: 'https://chat.example.org', VERIFICATION_RESEND_SECONDS: '0' })
  const email = uniqueEmail('host')
  const evil = { host: 'evil.test', 'x-forwarded-host': 'evil.test', 'x-forwarded-proto': 'http', forwarded: 'host=evil.test' }
  t.equal((await post(app, '/auth/register', { email, password: PASSWORD }, evil)).statusCode, 200)
  t.equal((await post(app, '/auth/forgot-password', { email }, evil)).statusCode, 200)
  t.equal((await post(app, '/auth/resend-verification', { email }, evil)).statusCode, 200)
  const mails = [
    await mailFor(smtp, email, SUBJECTS.verify, 1),
    await mailFor(smtp, email, SUBJECTS.reset, 1),
    await mailFor(smtp, email, SUBJECTS.verify, 2)
  ]
  for (const mail of mails) {
    t.equal(new URL(mail.link!).origin, 'https://chat.example.org', `${mail.subject}: the configured origin`)
    t.notOk(mail.text.includes('evil.test') || mail.html.includes('evil.test'), 'no trace of the request host')
  }
})

t.test('item 31: a verification link answered by GET sends Referrer-Policy: no-referrer and its token is not logged', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, smtp.env)
  const email = uniqueEmail('referrer')
  await register(app, email)
  const token = tokenOf(await mailFor(smtp, email, SUBJECTS.verify))
  const res = await app.inject({ url: `/auth/verify/${token}` })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['referrer-policy'], 'no-referrer')
  t.ok(app.logs.text().includes('/auth/verify/[redacted]'), 'the request is logged, redacted')
  t.notOk(app.logs.text().includes(token), 'without its token')
})

t.test('item 34: an address carrying CR/LF and a Bcc header is refused before anything is stored or sent', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, smtp.env)
  const injected = 'victim@example.com\r\nBcc: attacker@example.com'
  for (const url of ['/auth/register', '/auth/forgot-password', '/auth/resend-verification']) {
    const res = await post(app, url, { email: injected, password: PASSWORD })
    t.equal(res.statusCode, 422, `${url}: 422`)
    t.strictSame(res.json().detail.map((e: { loc: string[] }) => e.loc), [['body', 'email']], `${url}: names the email`)
  }
  t.equal(await db(app).collection('users').countDocuments({}), 0, 'no account')
  t.equal(await outbox(db(app)).countDocuments({}), 0, 'no mail recorded')

  const email = uniqueEmail('one-recipient')
  await register(app, email)
  const mail = await mailFor(smtp, email, SUBJECTS.verify)
  const to = mail.parsed.to
  t.equal(Array.isArray(to) ? to.length : to?.value.length, 1, 'a mail has exactly one recipient')
  t.notOk(mail.parsed.cc || mail.parsed.bcc, 'and no copies')
})

t.test('item 38: with the default SMTP timeouts, a server that never greets ends the attempt (ETIMEDOUT), not a worker slot', async (t) => {
  const silent = await startSilentServer(t)
  const app = await build(t, { ...silent.env, MAIL_RETRY_BASE_SECONDS: '3600' })
  const to = uniqueEmail('silent-default')
  await app.mailer.send(to, { kind: 'password-changed' })
  // nodemailer's own greeting default is 30 s; the service's is 10 s.
  const failed = await entryWhen(db(app), to, (e) => e.status === 'pending' && e.attempts === 1, 20_000, 'the first attempt to end')
  t.equal(failed.last_error, 'ETIMEDOUT', 'the greeting timeout ended it')
  t.equal(silent.connections, 1, 'one connection, now closed')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)
})

t.test('item 40: every request body is a closed object in the OpenAPI document', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json()
  let bodies = 0
  for (const [path, operations] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, operation] of Object.entries<any>(operations)) {
      for (const [type, { schema }] of Object.entries<any>(operation.requestBody?.content ?? {})) {
        bodies++
        t.equal(schema.type, 'object', `${method} ${path} ${type}: an object`)
        t.equal(schema.additionalProperties, false, `${method} ${path} ${type}: no other fields`)
      }
    }
  }
  t.ok(bodies >= 13, `${bodies} request bodies checked`)
})

t.test('item 40: unknown body fields are dropped before the handler, never stored', async (t) => {
  const app = await build(t)
  const email = uniqueEmail('mass')
  const extras = {
    isAdmin: true,
    is_admin: true,
    emailVerified: true,
    is_verified: true,
    tokenVersion: 99,
    _id: '000000000000000000000001',
    id: '000000000000000000000002',
    password_hash: '$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA',
    role: 'admin',
    created_at: '2000-01-01T00:00:00.000Z'
  }
  const res = await post(app, '/auth/register', { email, password: PASSWORD, ...extras })
  t.equal(res.statusCode, 200)
  t.strictSame(Object.keys(res.json()).sort(), ['created_at', 'email', 'id', 'is_verified'])
  t.equal(res.json().is_verified, false)
  const stored = (await userDoc(app, email))!
  t.strictSame(Object.keys(stored).sort(), ['_id', 'created_at', 'email', 'is_verified', 'password_hash', 'updated_at'], 'only the allowed fields')
  t.equal(stored.is_verified, false)
  t.notOk(['000000000000000000000001', '000000000000000000000002'].includes(stored._id.toHexString()), 'the id is not the client\'s')
  t.not(stored.password_hash, extras.password_hash, 'the hash is the service\'s own')
  t.ok(stored.created_at.getTime() > Date.parse('2020-01-01'), 'created_at is the service\'s own')
  const token = await login(app, email)

  const chat = await app.inject({
    method: 'POST',
    url: '/chat/',
    headers: bearer(token),
    payload: {
      title: 'mine',
      user_id: '000000000000000000000003',
      _id: '000000000000000000000004',
      message_count: 1000,
      messages: [{ role: 'assistant', content: 'hi', status: 'streaming', seq: 7, user_id: '000000000000000000000003' }]
    }
  })
  t.equal(chat.statusCode, 200)
  const doc = (await db(app).collection('chats').findOne({}))!
  t.equal(doc.user_id.toHexString(), res.json().id, 'owned by the caller')
  t.not(doc._id.toHexString(), '000000000000000000000004')
  t.equal(doc.message_count, 1)
  const message = (await db(app).collection('messages').findOne({}))!
  t.match(message, { seq: 1, status: 'complete', role: 'assistant', content: 'hi' })
  t.equal(message.user_id.toHexString(), res.json().id)
})

t.test('item 41: bracketed form keys and query keys are not operators', async (t) => {
  const app = await build(t)
  const { email } = await signUp(app)
  const form = (body: string) => app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: body })
  for (const body of ['username[$ne]=&password[$ne]=', `username[$ne]=x&password=${encodeURIComponent(PASSWORD)}`, `username=${encodeURIComponent(email)}&password[$gt]=`]) {
    const res = await form(body)
    t.equal(res.statusCode, 422, `${body}: 422`)
    t.notOk(res.body.includes('access_token'), 'no token')
  }
  const query = await app.inject({ method: 'POST', url: '/auth/forgot-password?email[$ne]=x' })
  t.equal(query.statusCode, 422, 'email[$ne] in the query: 422')
  t.equal(await outbox(db(app)).countDocuments({ kind: 'reset-password' }), 0, 'no reset mail')
})

t.test('item 42: constructor.prototype bodies are refused', async (t) => {
  const app = await build(t)
  const res = await app.inject({
    method: 'POST',
    url: '/auth/register',
    headers: { 'content-type': 'application/json' },
    payload: `{"email":"${uniqueEmail('ctor')}","password":"long enough password","constructor":{"prototype":{"isAdmin":true}}}`
  })
  t.equal(res.statusCode, 400)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(await db(app).collection('users').countDocuments({}), 0)
  t.equal(({} as Record<string, unknown>).isAdmin, undefined, 'no prototype was touched')
})

t.test('item 43: repeated form and query fields are refused', async (t) => {
  const app = await build(t)
  const { email } = await signUp(app)
  const form = (body: URLSearchParams) => app.inject({
    method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: body.toString()
  })
  const twoUsers = await form(new URLSearchParams([['username', email], ['username', uniqueEmail('other')], ['password', PASSWORD]]))
  t.equal(twoUsers.statusCode, 422, 'username twice: 422')
  t.strictSame(twoUsers.json().detail.map((e: { loc: string[] }) => e.loc), [['body', 'username']])
  const twoPasswords = await form(new URLSearchParams([['username', email], ['password', 'wrong'], ['password', PASSWORD]]))
  t.equal(twoPasswords.statusCode, 422, 'password twice: 422')
  const query = await app.inject({ method: 'POST', url: `/auth/forgot-password?email=${encodeURIComponent(email)}&email=${encodeURIComponent(uniqueEmail('other'))}` })
  t.equal(query.statusCode, 422, 'email twice in the query: 422')
  t.equal(await outbox(db(app)).countDocuments({ kind: 'reset-password' }), 0, 'no reset mail')
})

t.test('item 44: JSON is matched by media type whatever its casing and parameters; anything else is 415', async (t) => {
  const app = await build(t)
  const send = (type: string, payload: unknown) =>
    app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': type }, payload: JSON.stringify(payload) })
  for (const type of ['APPLICATION/JSON', 'Application/Json; charset=UTF-8', 'application/json ; charset=utf-8']) {
    const invalid = await send(type, { email: 'not-an-email', password: 'short' })
    t.equal(invalid.statusCode, 422, `${type}: the body is validated`)
    const valid = await send(type, { email: uniqueEmail('ctype'), password: PASSWORD })
    t.equal(valid.statusCode, 200, `${type}: and accepted when valid`)
  }
  for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/jsonx', 'application/json-patch+json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const res = await send(type, { email: uniqueEmail('ctype'), password: PASSWORD })
    t.equal(res.statusCode, 415, `${type}: 415`)
  }
  t.equal(await db(app).collection('users').countDocuments({}), 3, 'only the three valid JSON sign-ups were stored')
})

t.test('item 51 (and 59): every API route answers with nosniff, no-store and a charset', async (t) => {
  const app = await build(t)
  const { headers, token } = await signUp(app)
  const chat = (await app.inject({ method: 'POST', url: '/chat/', headers, payload: { title: 'x' } })).json()
  const refresh = (await loginForm(app, (await me(app, token)).json().email, PASSWORD)).json().refresh_token
  const requests: Array<{ method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, auth?: boolean }> = [
    { method: 'POST', url: '/auth/register', payload: { email: uniqueEmail('hdr'), password: PASSWORD } },
    { method: 'POST', url: '/auth/login', payload: { username: uniqueEmail('hdr'), password: PASSWORD } },
    { method: 'POST', url: '/auth/refresh', payload: { refresh_token: refresh } },
    { method: 'POST', url: '/auth/change-password', payload: { current_password: 'wrong one', new_password: NEW_PASSWORD }, auth: true },
    { method: 'POST', url: '/auth/forgot-password', payload: { email: uniqueEmail('hdr') } },
    { method: 'POST', url: '/auth/resend-verification', payload: { email: uniqueEmail('hdr') } },
    { method: 'GET', url: '/auth/verify/not-a-token' },
    { method: 'POST', url: '/auth/verify', payload: { token: 'not-a-token' } },
    { method: 'POST', url: '/auth/reset-password/not-a-token', payload: { new_password: NEW_PASSWORD } },
    { method: 'POST', url: '/auth/reset-password', payload: { token: 'not-a-token', new_password: NEW_PASSWORD } },
    { method: 'GET', url: '/users/me', auth: true },
    { method: 'GET', url: '/users/me/sessions', auth: true },
    { method: 'GET', url: '/users/me' },
    { method: 'GET', url: '/chat/', auth: true },
    { method: 'POST', url: '/chat/', payload: { title: 'y' }, auth: true },
    { method: 'GET', url: `/chat/${chat.id}`, auth: true },
    { method: 'PUT', url: `/chat/${chat.id}`, payload: { title: 'z' }, auth: true },
    { method: 'GET', url: '/chat/000000000000000000000000', auth: true },
    { method: 'POST', url: '/chat/stream', payload: { message: 'hello' }, auth: true },
    { method: 'DELETE', url: `/chat/${chat.id}`, auth: true },
    { method: 'DELETE', url: '/users/me/sessions/000000000000000000000000', auth: true },
    { method: 'POST', url: '/auth/logout-all', auth: true },
    { method: 'GET', url: '/health' },
    { method: 'GET', url: '/nope' }
  ]
  for (const r of requests) {
    const res = await app.inject({ method: r.method, url: r.url, payload: r.payload as never, headers: r.auth ? headers : {} })
    const name = `${r.method} ${r.url} (${res.statusCode})`
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${name}: nosniff`)
    t.match(String(res.headers['cache-control']), /(^|[ ,])no-store($|[ ,])/, `${name}: no-store`)
    if (res.statusCode !== 204) t.match(String(res.headers['content-type']), /; charset=utf-8$/i, `${name}: charset`)
    if (r.url === '/chat/stream') {
      t.match(String(res.headers['content-type']), /^text\/event-stream/, 'the stream is an event stream')
      t.equal(res.headers['x-accel-buffering'], 'no')
    }
  }
})

t.test('item 52: a newline in an input cannot forge a log line', async (t) => {
  const app = await build(t)
  const forged = '{"level":60,"msg":"forged line"}'
  await app.inject({ method: 'POST', url: '/auth/login', payload: { username: `x\n${forged}\n@example.com`, password: 'whatever it is' } })
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email: `y\r\n${forged}@example.com`, password: PASSWORD } })
  await app.inject({ url: `/nope?q=${encodeURIComponent(`\n${forged}`)}` })
  t.ok(app.logs.raw.length > 5, 'requests were logged')
  for (const line of app.logs.raw) t.doesNotThrow(() => JSON.parse(line), 'each line is one JSON object')
  t.notOk(app.logs.lines.some((l) => l.msg === 'forged line'), 'no forged line')
  t.ok(app.logs.lines.filter((l) => l.msg === 'incoming request').every((l) => typeof l.request_id === 'string' && /Z$/.test(String(l.time))),
    'request lines carry a request id and a UTC time')
})

t.test('item 55: the server sets a request timeout and keeps headers and keep-alive timeouts bounded', async (t) => {
  const app = await build(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal(app.server.requestTimeout, 30_000, 'requestTimeout 30 s')
  t.ok(app.server.headersTimeout > 0 && app.server.headersTimeout <= 60_000, `headersTimeout ${app.server.headersTimeout} ms`)
  t.equal(app.server.keepAliveTimeout, 72_000, 'keepAliveTimeout 72 s')
})

t.test('item 56: a flood of password hashes is turned away with 503 and Retry-After, not queued without end', async (t) => {
  const app = await build(t)
  const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => register(app, uniqueEmail(`flood${i}`))))
  const statuses = answers.map((r) => r.statusCode)
  t.strictSame([...new Set(statuses)].sort(), [200, 503], 'only 200 and 503')
  const refused = answers.filter((r) => r.statusCode === 503)
  t.ok(refused.length >= 50, `${refused.length} turned away at once`)
  t.ok(refused.every((r) => r.headers['retry-after'] === '5' && /^application\/problem\+json/.test(String(r.headers['content-type']))),
    'each a problem with Retry-After')
  const reasons = new Map<string, string>()
  for (const line of app.logs.lines) if (line.msg === 'service unavailable') reasons.set(String(line.request_id), String(line.reason))
  const busy = refused.filter((r) => reasons.get(String(r.headers['x-request-id'])) === 'Too busy, retry shortly')
  t.ok(busy.length >= 50, `${busy.length} of them by the password hasher's queue bound`)
  t.ok(await db(app).collection('users').countDocuments({}) >= statuses.filter((s) => s === 200).length, 'every 200 is an account')
})

t.test('item 49: an uncaught exception or unhandled rejection ends the process through close-with-grace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'review-preload-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const preload = join(dir, 'fail-on-message.mjs')
  writeFileSync(preload, [
    "process.on('message', (m) => {",
    "  if (m === 'throw') setImmediate(() => { throw new Error('review: uncaught exception') })",
    "  if (m === 'reject') Promise.reject(new Error('review: unhandled rejection'))",
    '})'
  ].join('\n'))
  for (const kind of ['throw', 'reject']) {
    const result = await runServer(t, {}, { preload: pathToFileURL(preload).href, whenListening: (send) => send(kind) })
    t.equal(result.code, 1, `${kind}: exit code 1`)
    const closing = result.output.split('\n').filter((l) => l.includes('closing after an unexpected error'))
    t.equal(closing.length, 1, `${kind}: the close is logged once`)
    t.match(closing[0], /review: (uncaught exception|unhandled rejection)/, 'with the error')
  }
})

t.test('item 15: auth events are logged once each, with request id and user id, and IP on their request line', async (t) => {
  const smtp = await startSmtp(t)
  const app = await build(t, smtp.env)
  const { email, token, user } = await signUp(app)
  await loginForm(app, email, 'a wrong password')
  await loginForm(app, uniqueEmail('ghost'), 'a wrong password')
  await post(app, '/auth/change-password', { current_password: 'also wrong', new_password: NEW_PASSWORD }, bearer(token))
  await post(app, '/auth/change-password', { current_password: PASSWORD, new_password: NEW_PASSWORD }, bearer(token))
  const link = await resetToken(app, smtp, email)
  t.equal((await post(app, '/auth/reset-password', { token: link, new_password: THIRD_PASSWORD })).statusCode, 200)
  await me(app, 'not.a.token')
  const fresh = bearer(await login(app, email, THIRD_PASSWORD))
  t.equal((await app.inject({ method: 'DELETE', url: '/users/me', headers: fresh, payload: { password: 'not it' } })).statusCode, 401)
  t.equal((await app.inject({ method: 'DELETE', url: '/users/me', headers: fresh, payload: { password: THIRD_PASSWORD } })).statusCode, 204)

  const events: Array<[string, boolean]> = [
    ['user registered', true],
    ['login succeeded', true],
    ['login failed: wrong password', true],
    ['login failed: unknown address', false],
    ['password change refused: wrong current password', true],
    ['password changed', true],
    ['password reset requested', true],
    ['password reset', true],
    ['access token rejected', false],
    ['account deletion refused: wrong password', true],
    ['account deleted', true]
  ]
  for (const [msg, withUser] of events) {
    const lines = app.logs.lines.filter((l) => l.msg === msg)
    t.equal(lines.length, msg === 'login succeeded' ? 2 : 1, `"${msg}" once (login: twice)`)
    const line = lines[0] ?? {}
    t.type(line.request_id, 'string', `"${msg}": request id`)
    if (withUser) t.equal(line.user_id, user.id, `"${msg}": user id`)
    const request = app.logs.lines.find((l) => l.msg === 'incoming request' && l.request_id === line.request_id) as { req?: { ip?: string } } | undefined
    t.equal(request?.req?.ip, '127.0.0.1', `"${msg}": the IP, on the request line of the same id`)
  }
  const text = app.logs.text()
  for (const secret of [PASSWORD, NEW_PASSWORD, THIRD_PASSWORD, 'a wrong password', 'also wrong', 'not it', token, link]) t.notOk(text.includes(secret), 'no secret in the log')
})

t.test('item 15: a blocked password check is logged, with the user id when the address has an account', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '2' })
  const { email, user } = await signUp(app)
  const ghost = uniqueEmail('ghost')
  for (const address of [email, ghost]) {
    for (let i = 0; i < 2; i++) t.equal((await loginForm(app, address, 'a wrong password')).statusCode, 401)
    t.equal((await loginForm(app, address, address === email ? PASSWORD : 'a wrong password')).statusCode, 429, 'blocked')
  }
  const lines = app.logs.lines.filter((l) => l.msg === 'password check blocked: too many failures')
  t.equal(lines.length, 2, 'one line per blocked attempt')
  t.equal(lines[0]?.user_id, user.id, 'the account\'s user id')
  t.equal(lines[1]?.user_id, undefined, 'no user id for an unknown address')
  for (const line of lines) t.type(line.request_id, 'string', 'request id')
  t.notOk(app.logs.text().includes(ghost), 'no address in the log')
})

t.test('finding 7: behind a proxy (TRUST_PROXY), X-Forwarded-For sets the client address of rate limits and sessions; without it, it is ignored', async (t) => {
  /** Logs in through a proxy that says the client is `client`; the IP the new session shows. */
  const sessionIp = async (app: TestApp, client: string) => {
    const { email } = await signUp(app)
    const res = await loginJson(app, email, PASSWORD, { 'x-forwarded-for': client })
    t.equal(res.statusCode, 200)
    const sessions = await app.inject({ url: '/users/me/sessions', headers: bearer(res.json().access_token) })
    return sessions.json().find((s: { current: boolean }) => s.current).ip
  }
  const flood = async (app: TestApp, client: string, times: number) => {
    const statuses: number[] = []
    for (let i = 0; i < times; i++) {
      const res = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'x-forwarded-for': client }, payload: { email: uniqueEmail('proxied'), password: PASSWORD } })
      statuses.push(res.statusCode)
    }
    return statuses
  }
  const max = rateLimits.register.rateLimit.max

  for (const setting of ['true', '127.0.0.1', '127.0.0.0/8, ::1', 'loopback']) {
    const app = await build(t, { TRUST_PROXY: setting, RATE_LIMIT_ENABLED: 'true' })
    t.equal(await sessionIp(app, '203.0.113.7'), '203.0.113.7', `TRUST_PROXY=${setting}: the session shows the client's address`)
    t.equal((await flood(app, '203.0.113.20', max + 1)).at(-1), 429, `TRUST_PROXY=${setting}: one client is limited`)
    t.same(await flood(app, '203.0.113.21', 1), [200], `TRUST_PROXY=${setting}: another client behind the same proxy is not`)
  }

  const direct = await build(t, { RATE_LIMIT_ENABLED: 'true' })
  t.equal(await sessionIp(direct, '203.0.113.7'), '127.0.0.1', 'unset: the peer address, X-Forwarded-For ignored')
  const untrusted = await build(t, { TRUST_PROXY: '10.0.0.0/8' })
  t.equal(await sessionIp(untrusted, '203.0.113.7'), '127.0.0.1', 'a peer outside the trusted list: X-Forwarded-For ignored')

  for (const setting of ['every proxy', '1', '1.2.3', '10.0.0.0/33']) {
    await t.rejects(build(t, { TRUST_PROXY: setting }), /TRUST_PROXY/, `${setting}: neither true nor addresses (hop counts trust no peer in Fastify 5.12): refused at boot, named`)
  }
})

t.test('finding 9: a body that is not valid UTF-8 is a 400, never decoded into another password', async (t) => {
  const app = await build(t)
  const email = uniqueEmail('utf8')
  // Two different byte strings that lossy decoding turns into the same password (U+FFFD twice).
  const passwords = [Buffer.from([0xff, 0xfe]), Buffer.from([0xc3, 0xc3])].map((bad) => Buffer.concat([Buffer.from('long enough '), bad]))
  for (const password of passwords) {
    const json = Buffer.concat([Buffer.from(`{"email":"${email}","password":"`), password, Buffer.from('"}')])
    const res = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/json' }, payload: json })
    t.equal(res.statusCode, 400, 'register (JSON): 400')
    t.equal(res.json().detail, 'Body is not valid UTF-8')
  }
  t.equal(await db(app).collection('users').countDocuments(), 0, 'no account made')

  const { email: known } = await signUp(app)
  const forms = [
    Buffer.concat([Buffer.from(`username=${encodeURIComponent(known)}&password=`), passwords[0]!]),
    Buffer.from(`username=${encodeURIComponent(known)}&password=long+enough+%FF%FE`),
    Buffer.from(`username=${encodeURIComponent(known)}&password=long+enough+%C3%C3`)
  ]
  for (const payload of forms) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload })
    t.equal(res.statusCode, 400, 'login (form): 400')
    t.equal(res.json().detail, 'Body is not valid UTF-8')
  }
  t.equal((await loginForm(app, known, PASSWORD)).statusCode, 200, 'a valid form still logs in')
  const accented = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail('accent'), password: 'pässwörd 🔑 long' } })
  t.equal(accented.statusCode, 200, 'valid UTF-8 beyond ASCII still accepted')
})
