import { randomBytes } from 'node:crypto'
import t from 'tap'
import { build, db, TEST_SECRET } from '../../support/app.js'
import { assertProblem } from '../../support/problems.js'
import { base64url, claimsOf, hmacToken, validClaims, validHeader } from '../../support/tokens.js'
import { loginJson, PASSWORD, signUp } from '../../support/users.js'

t.test('GET /users/me returns exactly the User of the token', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  await signUp(app) // another user, so "the first user" would be the wrong answer

  const res = await app.inject({ url: '/users/me', headers: alice.headers })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['cache-control'], 'no-store')
  const me = res.json()
  t.same(Object.keys(me).sort(), ['created_at', 'email', 'id', 'is_verified'], 'no other keys (no hash, no _id)')
  t.equal(me.id, alice.user.id)
  t.match(me.id, /^[0-9a-f]{24}$/)
  t.equal(me.email, alice.email)
  t.equal(me.is_verified, false)
  t.equal(new Date(me.created_at).toISOString(), me.created_at, 'ISO 8601 UTC date')
  t.notMatch(res.body, /password|hash|argon/i)

  const slash = await app.inject({ url: '/users/me/', headers: alice.headers })
  t.equal(slash.statusCode, 200, 'trailing slash works')
  t.same(slash.json(), me)
})

t.test('GET /users/me without credentials is "Not authenticated"', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)

  const none = await app.inject({ url: '/users/me' })
  assertProblem(t, none, 401, 'Not authenticated')
  t.equal(none.headers['www-authenticate'], 'Bearer')

  const basic = await app.inject({ url: '/users/me', headers: { authorization: 'Basic xyz' } })
  assertProblem(t, basic, 401, 'Not authenticated')
  t.equal(basic.headers['www-authenticate'], 'Bearer')

  const basicWithToken = await app.inject({ url: '/users/me', headers: { authorization: `Basic ${alice.token}` } })
  assertProblem(t, basicWithToken, 401, 'Not authenticated')

  const emptyBearer = await app.inject({ url: '/users/me', headers: { authorization: 'Bearer' } })
  assertProblem(t, emptyBearer, 401, 'Not authenticated')
})

t.test('a hand-forged token with the right secret and claims is accepted (so the rejections below mean something)', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const { sub, sid } = claimsOf(alice.token)
  const token = hmacToken(validHeader, validClaims(sub, sid))
  const res = await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().id, alice.user.id)
})

t.test('GET /users/me with a bad, expired or forged token is "Could not validate credentials"', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const { sub, sid } = claimsOf(alice.token)
  const now = Math.floor(Date.now() / 1000)
  const attackerSecret = randomBytes(32)

  const cases: Record<string, string> = {
    'garbage token': 'not-a-jwt',
    'three garbage parts': 'aaa.bbb.ccc',
    'expired token': hmacToken(validHeader, { ...validClaims(sub, sid), iat: now - 7200, exp: now - 3600 }),
    'token signed with another secret': hmacToken(validHeader, validClaims(sub, sid), 'another-secret-that-is-long-enough-0123456789'),
    'alg none token': `${base64url({ alg: 'none', typ: 'at+jwt' })}.${base64url(validClaims(sub, sid))}.`,
    'HS512 token with the right secret': hmacToken({ alg: 'HS512', typ: 'at+jwt' }, validClaims(sub, sid), TEST_SECRET, 'sha512'),
    'wrong iss': hmacToken(validHeader, { ...validClaims(sub, sid), iss: 'someone-else' }),
    'wrong aud': hmacToken(validHeader, { ...validClaims(sub, sid), aud: 'someone-else' }),
    'wrong typ': hmacToken({ alg: 'HS256', typ: 'JWT' }, validClaims(sub, sid)),
    'no sid claim': hmacToken(validHeader, { ...validClaims(sub, sid), sid: undefined }),
    'attacker jwk header': hmacToken(
      { ...validHeader, jwk: { kty: 'oct', k: attackerSecret.toString('base64url') } },
      validClaims(sub, sid),
      attackerSecret
    ),
    'tampered claims of a real token': (() => {
      const [header, , signature] = alice.token.split('.')
      return `${header}.${base64url({ ...claimsOf(alice.token), sub: '000000000000000000000000' })}.${signature}`
    })(),
    'unknown session': hmacToken(validHeader, validClaims(sub, '000000000000000000000000')),
    'a real token with another word after it': `${alice.token} more`
  }

  for (const [name, token] of Object.entries(cases)) {
    await t.test(name, async (t) => {
      const res = await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${token}` } })
      assertProblem(t, res, 401, 'Could not validate credentials')
      t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
      t.notOk(res.body.includes(alice.email), 'nothing about the user leaks')
    })
  }

  t.equal((await app.inject({ url: '/users/me', headers: alice.headers })).statusCode, 200, 'the real token still works')
})

t.test('DELETE /users/me needs the password and deletes everything of the user', async (t) => {
  const app = await build(t)
  const { email, headers } = await signUp(app)
  await app.inject({ method: 'POST', url: '/chat/', headers, payload: { title: 'mine', messages: [{ role: 'user', content: 'hi' }] } })
  const other = await signUp(app)
  await app.inject({ method: 'POST', url: '/chat/', headers: other.headers, payload: { title: 'theirs' } })

  const wrong = await app.inject({ method: 'DELETE', url: '/users/me', headers, payload: { password: 'not my password' } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().detail, 'Incorrect password')

  const done = await app.inject({ method: 'DELETE', url: '/users/me', headers, payload: { password: PASSWORD } })
  t.equal(done.statusCode, 204)
  const database = db(app)
  t.equal(await database.collection('users').countDocuments({ email }), 0, 'user gone')
  t.equal(await database.collection('sessions').countDocuments({}), 1, "only the other user's session remains")
  t.equal(await database.collection('chats').countDocuments({}), 1, "only the other user's chat remains")
  t.equal(await database.collection('messages').countDocuments({}), 0, 'messages gone')
  t.equal(await database.collection('one_time_tokens').countDocuments({}), 1, "only the other user's verification token remains")
  t.equal((await app.inject({ url: '/users/me', headers })).statusCode, 401, 'tokens stop working')
  t.equal((await loginJson(app, email)).statusCode, 401, 'the account cannot log in')
  t.equal((await app.inject({ url: '/users/me', headers: other.headers })).statusCode, 200, 'others are untouched')
})

t.test('logins racing DELETE /users/me: no session of the deleted user lists or creates chats, or refreshes', async (t) => {
  const app = await build(t)
  const { email, headers } = await signUp(app)
  // Logins start one after another for as long as the deletion runs, so some are in flight at every step of it.
  const state = { deleting: true }
  const deletion = app.inject({ method: 'DELETE', url: '/users/me', headers, payload: { password: PASSWORD } }).finally(() => { state.deleting = false })
  const logins = []
  while (state.deleting) {
    logins.push(loginJson(app, email))
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  t.equal((await deletion).statusCode, 204)
  const sessions = (await Promise.all(logins)).filter((r) => r.statusCode === 200).map((r) => r.json())
  t.comment(`${sessions.length} of ${logins.length} logins answered 200`)
  for (const { access_token: token, refresh_token: refresh } of sessions) {
    const auth = { authorization: `Bearer ${token}` }
    t.equal((await app.inject({ url: '/chat/', headers: auth })).statusCode, 401, 'listing chats: 401')
    t.equal((await app.inject({ method: 'POST', url: '/chat/', headers: auth, payload: { title: 'nobody\'s' } })).statusCode, 401, 'creating a chat: 401')
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refresh } })).statusCode, 401, 'refresh: 401')
  }
  t.equal(await db(app).collection('chats').countDocuments({}), 0, 'no chat without an owner')
  t.equal(await db(app).collection('sessions').countDocuments({ revoked_at: null }), 0, 'no live session left')
})
