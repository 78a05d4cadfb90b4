import t from 'tap'
import { build, db, listen, post, type TestApp } from '../../support/app.js'
import { hasText, named, openSse } from '../../support/sse.js'
import { bearer, login, loginJson, signUp } from '../../support/users.js'

async function refresh (app: TestApp, token: string) {
  return await post(app, '/auth/refresh', { refresh_token: token })
}

t.test('login returns a refresh token; refresh rotates it', async (t) => {
  const app = await build(t)
  const { email } = await signUp(app)
  const login = (await loginJson(app, email)).json()
  t.type(login.refresh_token, 'string')
  t.ok(login.refresh_token.length >= 43, '256-bit token')

  const first = await refresh(app, login.refresh_token)
  t.equal(first.statusCode, 200)
  t.equal(first.headers['cache-control'], 'no-store')
  const rotated = first.json()
  t.same(Object.keys(rotated).sort(), ['access_token', 'expires_at', 'expires_in', 'refresh_token', 'token_type'])
  t.not(rotated.refresh_token, login.refresh_token, 'a new refresh token')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(rotated.access_token) })).statusCode, 200)

  const stored = await db(app).collection('sessions').findOne({})
  t.not(stored?.refresh_hash, login.refresh_token, 'stored hashed, not as given')
  t.not(stored?.refresh_hash, rotated.refresh_token)

  t.equal((await refresh(app, 'not-a-token')).statusCode, 401)
  t.equal((await refresh(app, 'not-a-token')).json().detail, 'Invalid or expired refresh token')
})

t.test('a rotated refresh token presented again (after the grace) revokes the whole session', async (t) => {
  const app = await build(t)
  const { email } = await signUp(app)
  const login = (await loginJson(app, email)).json()
  const next = (await refresh(app, login.refresh_token)).json()
  // Age the rotation past the grace window.
  await db(app).collection('claims').updateMany({}, { $set: { created_at: new Date(Date.now() - 60_000) } })

  const reuse = await refresh(app, login.refresh_token)
  t.equal(reuse.statusCode, 401)
  t.equal((await refresh(app, next.refresh_token)).statusCode, 401, 'the current refresh token died with the session')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(next.access_token) })).statusCode, 401, 'and so did its access token')
  t.ok(app.logs.lines.some((l) => l.msg === 'rotated refresh token reused: session revoked'), 'the reuse is logged')
})

t.test('parallel refreshes with one token share one rotation', async (t) => {
  const app = await build(t)
  const { email } = await signUp(app)
  const login = (await loginJson(app, email)).json()
  const answers = await Promise.all(Array.from({ length: 10 }, () => refresh(app, login.refresh_token)))
  t.same(answers.map((a) => a.statusCode), Array(10).fill(200), 'all succeed')
  const tokens = new Set(answers.map((a) => a.json().refresh_token))
  t.equal(tokens.size, 1, 'all get the same new refresh token')
  t.equal((await refresh(app, [...tokens][0] as string)).statusCode, 200, 'which works')
})

t.test('logout ends this session only; logout-all ends every one', async (t) => {
  const app = await build(t)
  const { email } = await signUp(app)
  const a = (await loginJson(app, email)).json()
  const b = (await loginJson(app, email)).json()
  const c = (await loginJson(app, email)).json()

  const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(a.access_token) })
  t.equal(out.statusCode, 204)
  t.equal(out.body, '')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(a.access_token) })).statusCode, 401, 'its access token stops')
  t.equal((await refresh(app, a.refresh_token)).statusCode, 401, 'its refresh token stops')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(b.access_token) })).statusCode, 200, 'others live on')

  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(b.access_token) })).statusCode, 204)
  for (const s of [b, c]) {
    t.equal((await app.inject({ url: '/users/me', headers: bearer(s.access_token) })).statusCode, 401)
    t.equal((await refresh(app, s.refresh_token)).statusCode, 401)
  }
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout' })).statusCode, 401, 'logout needs a token')
})

t.test('ending a session ends its live chat streams at once with an error event', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '200' })
  const { headers } = await signUp(app)
  const base = await listen(app)

  const live = await openSse(`${base}/chat/stream`, headers, { message: 'a long answer please' })
  await live.until((events) => events.length >= 1)
  await app.inject({ method: 'POST', url: '/auth/logout', headers })
  const raw = (await live.ended).body
  t.match(raw, 'event: error\ndata: {"detail":"Session ended"}', 'the stream ends with an error event')
  const reply = await db(app).collection('messages').findOne({ role: 'assistant' })
  t.equal(reply?.status, 'interrupted', 'the partial reply is kept')
})

t.test('ending a session on another instance ends its live stream there within 2 s; the user\'s other sessions stream on', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '200' })
  const other = await build(t, { DATABASE_NAME: app.env.DATABASE_NAME! })
  const base = await listen(app)
  const alice = await signUp(app)
  const laptop = bearer(await login(app, alice.email))
  const ending = await openSse(`${base}/chat/stream`, alice.headers, { message: 'a long answer please' })
  const staying = await openSse(`${base}/chat/stream`, laptop, { message: 'another long answer' })
  t.teardown(() => { ending.close(); staying.close() })
  await ending.until(hasText(1))

  const loggedOutAt = Date.now()
  t.equal((await other.inject({ method: 'POST', url: '/auth/logout', headers: alice.headers })).statusCode, 204, 'logged out through the other instance')
  const end = await ending.ended
  const elapsed = Date.now() - loggedOutAt
  t.ok(elapsed < 2000, `the stream ended ${elapsed} ms after the logout`)
  t.same(named(end.events, 'error'), [{ detail: 'Session ended' }], 'with an error event')
  t.equal(named<{ status: string }>(end.events, 'done')[0]?.status, 'interrupted')
  const rest = await staying.ended
  t.equal(named<{ status: string }>(rest.events, 'done')[0]?.status, 'complete', 'the laptop\'s stream ran to its end')
})
