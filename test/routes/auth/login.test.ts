import argon2 from 'argon2'
import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { rateLimits } from '../../../plugins/app/auth/limits.js'
import { build, db, post, type TestApp } from '../../support/app.js'
import { argon2Params, loginForm, loginJson, me, PASSWORD, register, signUp, uniqueEmail, userDoc } from '../../support/users.js'

/** A problem+json body without its per-request id, for comparing two answers. */
function withoutRequestId (response: LightMyRequestResponse) {
  const { request_id: requestId, ...rest } = response.json()
  return { rest, requestId }
}

t.test('POST /auth/login', async (t) => {
  t.test('the OAuth2 form and both JSON shapes give a bearer token', async (t) => {
    const app = await build(t)
    const email = uniqueEmail('login')
    await register(app, email)

    const answers = {
      form: await loginForm(app, email, PASSWORD),
      'form with grant_type and scope': await app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD, scope: '' }).toString()
      }),
      'JSON username': await post(app, '/auth/login', { username: email, password: PASSWORD }),
      'JSON email': await post(app, '/auth/login', { email, password: PASSWORD })
    }
    for (const [name, res] of Object.entries(answers)) {
      t.equal(res.statusCode, 200, name)
      const body = res.json()
      t.strictSame(Object.keys(body).sort(), ['access_token', 'expires_at', 'expires_in', 'refresh_token', 'token_type'], `${name}: body fields`)
      t.equal(body.token_type, 'bearer', name)
      t.equal(body.expires_in, 1800, `${name}: 30 minutes`)
      const exp = JSON.parse(Buffer.from(body.access_token.split('.')[1], 'base64url').toString()).exp
      t.equal(body.expires_at, new Date(exp * 1000).toISOString(), `${name}: expires_at is the token's expiry, as an ISO date`)
      t.match(body.access_token, /^[\w-]+\.[\w-]+\.[\w-]+$/, `${name}: a JWT`)
      t.equal(res.headers['cache-control'], 'no-store', `${name}: not cached`)
      t.equal((await me(app, body.access_token)).statusCode, 200, `${name}: the token works`)
    }
  })

  t.test('unknown address and wrong password give the same 401', async (t) => {
    const app = await build(t)
    const email = uniqueEmail('known')
    await register(app, email)

    const unknown = await loginForm(app, uniqueEmail('nobody'), PASSWORD)
    const wrong = await loginForm(app, email, `${PASSWORD}!`)
    for (const res of [unknown, wrong]) {
      t.equal(res.statusCode, 401)
      t.equal(res.json().detail, 'Incorrect email or password')
      t.equal(res.headers['www-authenticate'], 'Bearer')
    }
    t.strictSame(withoutRequestId(unknown).rest, withoutRequestId(wrong).rest, 'same body apart from request_id')
    t.not(withoutRequestId(unknown).requestId, withoutRequestId(wrong).requestId)
    for (const header of ['www-authenticate', 'content-type', 'cache-control', 'content-length']) {
      t.equal(unknown.headers[header], wrong.headers[header], `same ${header}`)
    }
    const jsonWrong = await post(app, '/auth/login', { email, password: 'wrong password' })
    t.equal(jsonWrong.statusCode, 401, 'JSON login refuses a wrong password too')
  })

  t.test('malformed logins are 422', async (t) => {
    const app = await build(t)
    const email = uniqueEmail('malformed')
    await register(app, email)

    const noUser = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ password: PASSWORD }).toString()
    })
    t.equal(noUser.statusCode, 422, 'missing username')
    t.strictSame(noUser.json().detail.map((e: { loc: string[] }) => e.loc), [['body', 'username']])

    const otherGrant = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ grant_type: 'client_credentials', username: email, password: PASSWORD }).toString()
    })
    t.equal(otherGrant.statusCode, 422, 'grant_type other than password')
    t.strictSame(otherGrant.json().detail.map((e: { loc: string[] }) => e.loc), [['body', 'grant_type']])

    const noPassword = await post(app, '/auth/login', { username: email })
    t.equal(noPassword.statusCode, 422, 'missing password')
    const operator = await post(app, '/auth/login', { username: email, password: { $ne: null } })
    t.equal(operator.statusCode, 422, 'an operator object is not a password')
    const operatorName = await post(app, '/auth/login', { username: { $gt: '' }, password: PASSWORD })
    t.equal(operatorName.statusCode, 422, 'an operator object is not an address')
  })

  t.test('an unverified user can log in and read /users/me', async (t) => {
    const app = await build(t)
    const { user, token } = await signUp(app)
    const res = await me(app, token)
    t.equal(res.statusCode, 200)
    t.strictSame(res.json(), user, 'the same User as registration returned')
    t.equal(res.json().is_verified, false)
  })

  t.test('/users/me refuses missing and bad tokens', async (t) => {
    const app = await build(t)
    const { token } = await signUp(app)

    const none = await app.inject({ url: '/users/me' })
    t.equal(none.statusCode, 401)
    t.equal(none.json().detail, 'Not authenticated')
    t.equal(none.headers['www-authenticate'], 'Bearer')

    const forged = await me(app, `${token.slice(0, -4)}AAAA`)
    t.equal(forged.statusCode, 401)
    t.equal(forged.json().detail, 'Could not validate credentials')
    t.equal(forged.headers['www-authenticate'], 'Bearer error="invalid_token"')
  })

  t.test('a hash made with weaker parameters is upgraded at login', async (t) => {
    const app = await build(t, { ARGON2_TIME_COST: '3' })
    const email = uniqueEmail('rehash')
    const oldHash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 })
    const now = new Date()
    await db(app).collection('users').insertOne({ email, password_hash: oldHash, is_verified: false, created_at: now, updated_at: now })

    const first = await loginForm(app, email, PASSWORD)
    t.equal(first.statusCode, 200, 'the old hash still verifies')
    const upgraded = (await userDoc(app, email))!.password_hash
    t.not(upgraded, oldHash, 'the stored hash was replaced')
    t.strictSame(argon2Params(upgraded), { id: 'argon2id', v: 19, m: 19456, t: 3, p: 1 }, upgraded)
    t.ok(await argon2.verify(upgraded, PASSWORD), 'the new hash is of the same password')

    t.equal((await loginForm(app, email, PASSWORD)).statusCode, 200, 'the password still works')
    t.equal((await userDoc(app, email))!.password_hash, upgraded, 'an up-to-date hash is left alone')
    t.equal((await loginForm(app, email, 'not the password')).statusCode, 401)
  })
})

t.test('per-IP rate limits (RATE_LIMIT_ENABLED)', async (t) => {
  t.test('login answers 429 with Retry-After once the limit is spent', async (t) => {
    const app = await build(t, { RATE_LIMIT_ENABLED: 'true' })
    const email = uniqueEmail('limited')
    t.equal((await register(app, email)).statusCode, 200)

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

t.test('too many failed logins: 429 with Retry-After, even with the right password; unknown addresses alike', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '3' })
  const { email } = await signUp(app)
  const ghost = uniqueEmail('ghost')
  for (const address of [email, ghost]) {
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await loginJson(app, address, 'wrong password!')).statusCode)
    t.same(statuses, [401, 401, 401, 429], `${address === email ? 'real' : 'unknown'} address`)
  }
  const blocked = await loginJson(app, email)
  t.equal(blocked.statusCode, 429, 'the right password is refused too')
  t.ok(Number(blocked.headers['retry-after']) > 0 && Number(blocked.headers['retry-after']) <= 900, 'Retry-After within the window')
  t.match(blocked.headers['content-type'], /problem\+json/)

  // The failures as a window that has ended leaves them: keyed to the previous window, expired.
  const attempts = db(app).collection<{ _id: string, window: number, expires_at: Date }>('login_attempts')
  const ended = (await attempts.find().toArray()).map((a) => ({ ...a, _id: a._id.replace(/^\d+/, String(a.window - 1)), window: a.window - 1, expires_at: new Date(Date.now() - 1000) }))
  t.ok(ended.length >= 6, 'the failures are stored')
  await attempts.deleteMany({})
  await attempts.insertMany(ended)
  t.equal((await loginJson(app, email)).statusCode, 200, 'allowed again once the window passed')
})

/** A JSON login from a client at `ip`. */
async function loginFrom (app: TestApp, ip: string, email: string, password = PASSWORD) {
  return await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: { username: email, password } })
}

t.test('30 parallel wrong logins for one address: only LOGIN_MAX_FAILURES are checked, the rest 429; unknown addresses alike', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '5' })
  const { email } = await signUp(app)
  for (const address of [email, uniqueEmail('ghost')]) {
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => loginJson(app, address, `wrong password ${i}`)))
    const statuses = answers.map((r) => r.statusCode)
    t.equal(statuses.filter((s) => s === 401).length, 5, `${address === email ? 'real' : 'unknown'} address: 5 checked (401)`)
    t.equal(statuses.filter((s) => s === 429).length, 25, 'the other 25 refused unchecked (429)')
  }
  t.equal((await loginJson(app, email)).statusCode, 429, 'the right password is refused too')
})

t.test('the lockout is per address and IP, with a higher per-address limit across IPs; old entries are pruned', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '3', LOGIN_MAX_FAILURES_PER_ACCOUNT: '5' })
  const { email } = await signUp(app)
  for (let i = 0; i < 3; i++) t.equal((await loginFrom(app, '203.0.113.1', email, 'a wrong password')).statusCode, 401)
  const attacker = await loginFrom(app, '203.0.113.1', email)
  t.equal(attacker.statusCode, 429, 'the guessing IP is blocked, even with the right password')
  t.ok(Number(attacker.headers['retry-after']) > 0 && Number(attacker.headers['retry-after']) <= 900, 'Retry-After within 15 minutes')
  t.equal((await loginFrom(app, '198.51.100.7', email)).statusCode, 200, 'the owner, from another IP, still logs in')

  t.equal((await loginFrom(app, '203.0.113.2', email, 'a wrong password')).statusCode, 401, 'failure 4 across IPs')
  t.equal((await loginFrom(app, '203.0.113.3', email, 'a wrong password')).statusCode, 401, 'failure 5 across IPs')
  const everyone = await loginFrom(app, '198.51.100.7', email)
  t.equal(everyone.statusCode, 429, 'past the per-address limit every IP is refused, the owner\'s too')
  t.ok(Number(everyone.headers['retry-after']) > 0 && Number(everyone.headers['retry-after']) <= 3600, 'Retry-After within the hour')

  const stored = db(app).collection<{ _id: string, expires_at: Date }>('login_attempts')
  t.ok(await stored.countDocuments() > 0, 'the failures are stored')
  t.equal(await app.loginThrottle.prune(), 0, 'nothing is pruned while its window lasts')
  await stored.updateMany({}, { $set: { expires_at: new Date(Date.now() - 1000) } })
  t.ok(await app.loginThrottle.prune() > 0, 'entries of windows that have passed are pruned')
  t.equal(await stored.countDocuments(), 0, 'none is left')
})
