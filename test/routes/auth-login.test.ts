import argon2 from 'argon2'
import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { build, db, post } from '../support/app.js'
import { argon2Params, loginForm, me, PASSWORD, register, signUp, uniqueEmail, userDoc } from '../support/users.js'

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
      t.strictSame(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'], `${name}: body fields`)
      t.equal(body.token_type, 'bearer', name)
      t.equal(body.expires_in, 1800, `${name}: 30 minutes`)
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
    t.strictSame(noUser.json().errors.map((e: { loc: string[] }) => e.loc), [['body', 'username']])

    const otherGrant = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ grant_type: 'client_credentials', username: email, password: PASSWORD }).toString()
    })
    t.equal(otherGrant.statusCode, 422, 'grant_type other than password')
    t.strictSame(otherGrant.json().errors.map((e: { loc: string[] }) => e.loc), [['body', 'grant_type']])

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
