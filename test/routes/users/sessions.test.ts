import t from 'tap'
import { build } from '../../support/app.js'
import { bearer, loginJson, PASSWORD, signUp } from '../../support/users.js'

t.test('GET /users/me/sessions lists live sessions; DELETE ends one', async (t) => {
  const app = await build(t)
  const { email } = await signUp(app)
  const mine = (await loginJson(app, email, PASSWORD, { 'user-agent': 'test-agent/1.0' })).json()
  const list = await app.inject({ url: '/users/me/sessions', headers: bearer(mine.access_token) })
  t.equal(list.statusCode, 200)
  const sessions = list.json()
  t.equal(sessions.length, 2, 'the sign-up login and this one')
  const current = sessions.find((s: { current: boolean }) => s.current)
  t.match(current, { user_agent: 'test-agent/1.0', ip: '127.0.0.1' })
  t.same(Object.keys(current).sort(), ['created_at', 'current', 'id', 'ip', 'last_used_at', 'user_agent'])
  const other = sessions.find((s: { current: boolean }) => !s.current)

  const stranger = await signUp(app)
  const foreign = await app.inject({ method: 'DELETE', url: `/users/me/sessions/${other.id}`, headers: stranger.headers })
  t.equal(foreign.statusCode, 404, "another user's session is not found")
  t.equal(foreign.json().detail, 'Session not found')
  t.equal((await app.inject({ method: 'DELETE', url: '/users/me/sessions/nope', headers: bearer(mine.access_token) })).statusCode, 404)

  t.equal((await app.inject({ method: 'DELETE', url: `/users/me/sessions/${other.id}`, headers: bearer(mine.access_token) })).statusCode, 204)
  const after = (await app.inject({ url: '/users/me/sessions', headers: bearer(mine.access_token) })).json()
  t.same(after.map((s: { id: string }) => s.id), [current.id])
})
