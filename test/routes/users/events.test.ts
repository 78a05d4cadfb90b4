import { ObjectId } from 'mongodb'
import t from 'tap'
import { build, db, post, type TestApp } from '../../support/app.js'
import { mailFor, registered, resetToken, SUBJECTS, tokenOf } from '../../support/mail.js'
import { assertProblem, assertValidation } from '../../support/problems.js'
import { until } from '../../support/until.js'
import { bearer, loginForm, loginJson, PASSWORD, signUp, uniqueEmail } from '../../support/users.js'
import type { SecurityEvent } from '../../../schemas/users.js'

async function page (app: TestApp, token: string, query = '') {
  return await app.inject({ url: `/users/me/events${query}`, headers: bearer(token) })
}

/** The caller's whole timeline, newest first. */
async function timeline (app: TestApp, token: string): Promise<SecurityEvent[]> {
  const res = await page(app, token, '?limit=100')
  if (res.statusCode !== 200) throw new Error(`timeline: ${res.statusCode} ${res.body}`)
  return res.json().events
}

const kinds = (events: SecurityEvent[]) => events.map((e) => e.kind)

async function loginAs (app: TestApp, email: string, agent: string, password = PASSWORD) {
  const res = await loginJson(app, email, password, { 'user-agent': agent })
  if (res.statusCode !== 200) throw new Error(`login: ${res.statusCode} ${res.body}`)
  return res.json() as { access_token: string, refresh_token: string }
}

const sessionOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sid as string

t.test('each event appears after the action that causes it, and none shows a secret', async (t) => {
  const { app, smtp, email, token: verifyToken } = await registered(t, { VERIFICATION_RESEND_SECONDS: '0' })
  const secrets: string[] = [PASSWORD, verifyToken]

  t.equal((await post(app, '/auth/verify', { token: verifyToken })).statusCode, 200)
  const first = await loginAs(app, email, 'agent-one/1.0')
  secrets.push(first.access_token, first.refresh_token)
  let events = await timeline(app, first.access_token)
  t.same(kinds(events), ['signed_in', 'email_verified'], 'verification, then the sign-in, newest first')
  t.same(Object.keys(events[0]!).sort(), ['at', 'id', 'ip', 'kind', 'session_id', 'user_agent'], 'a sign-in has its session, IP and user agent')
  t.match(events[0], { ip: '127.0.0.1', user_agent: 'agent-one/1.0', session_id: sessionOf(first.access_token) })
  t.same(Object.keys(events[1]!).sort(), ['at', 'id', 'kind'])

  // A refresh, then the rotated refresh token presented again (after the grace).
  const rotated = (await post(app, '/auth/refresh', { refresh_token: first.refresh_token })).json()
  secrets.push(rotated.access_token, rotated.refresh_token)
  await db(app).collection('claims').updateMany({}, { $set: { created_at: new Date(Date.now() - 60_000) } })
  t.equal((await post(app, '/auth/refresh', { refresh_token: first.refresh_token }, { 'user-agent': 'thief/6.6' })).statusCode, 401)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(rotated.access_token) })).statusCode, 401, 'the session is ended')

  const second = await loginAs(app, email, 'agent-two/2.0')
  secrets.push(second.access_token, second.refresh_token)
  events = await timeline(app, second.access_token)
  t.same(kinds(events).slice(0, 3), ['signed_in', 'refresh_token_reused', 'signed_in'], 'the reuse, which ended its session, then the new sign-in')
  t.match(events[1], { session_id: sessionOf(first.access_token), ip: '127.0.0.1', user_agent: 'thief/6.6' }, 'the reuse names its session and who presented it')

  // A password change from the second session ends the others (a third one here).
  const third = await loginAs(app, email, 'agent-three/3.0')
  const newPassword = 'a brand new password 42'
  secrets.push(third.access_token, third.refresh_token, newPassword)
  const changed = await app.inject({
    method: 'POST', url: '/auth/change-password', headers: bearer(second.access_token), payload: { current_password: PASSWORD, new_password: newPassword }
  })
  t.equal(changed.statusCode, 200)
  events = await timeline(app, second.access_token)
  t.same(kinds(events).slice(0, 3).sort(), ['password_changed', 'session_ended', 'signed_in'].sort())
  t.match(events.find((e) => e.kind === 'password_changed'), { session_id: sessionOf(second.access_token), ip: '127.0.0.1' })
  t.match(events.find((e) => e.kind === 'session_ended'), { reason: 'password_changed', count: 1 })

  // Forgot-password: the event is there once the mail is.
  const reset = await resetToken(app, smtp, email)
  secrets.push(reset)
  events = await timeline(app, second.access_token)
  t.equal(events[0]!.kind, 'password_reset_requested')
  t.same(Object.keys(events[0]!).sort(), ['at', 'id', 'kind'])

  const finalPassword = 'the final password 1234'
  secrets.push(finalPassword)
  t.equal((await post(app, '/auth/reset-password', { token: reset, new_password: finalPassword })).statusCode, 200)
  const fourth = await loginAs(app, email, 'agent-four/4.0', finalPassword)
  secrets.push(fourth.access_token, fourth.refresh_token)
  events = await timeline(app, fourth.access_token)
  t.same(kinds(events).slice(0, 3), ['signed_in', 'session_ended', 'password_reset_completed'])
  t.match(events[1], { reason: 'password_reset_completed', count: 1 }, 'the reset ended the session left')

  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(fourth.access_token) })).statusCode, 204)
  const fifth = await loginAs(app, email, 'agent-five/5.0', finalPassword)
  events = await timeline(app, fifth.access_token)
  t.same(kinds(events).slice(0, 2), ['signed_in', 'session_ended'])
  t.match(events[1], { reason: 'signed_out', session_id: sessionOf(fourth.access_token), count: 1 })

  const body = (await page(app, fifth.access_token, '?limit=100')).body
  for (const secret of secrets) t.notOk(body.includes(secret), 'no token, link or password in the timeline')
  t.notMatch(body, /\$argon2/, 'no hash')
  const stored = JSON.stringify(await db(app).collection('security_events').find({}).toArray())
  for (const secret of secrets) t.notOk(stored.includes(secret), 'none stored either')
})

t.test('failed sign-ins are one event per IP and window with a count; a lockout is one event; unknown addresses get none', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '3' })
  const { email, token } = await signUp(app)
  for (let i = 0; i < 3; i++) t.equal((await loginForm(app, email, 'wrong password!')).statusCode, 401)
  const failed = await until(async () => (await timeline(app, token)).find((e) => e.kind === 'sign_in_failed' && e.count === 3), 5000, 'three failures counted')
  t.match(failed, { ip: '127.0.0.1', count: 3 })
  t.ok(failed.last_at && failed.last_at >= failed.at, 'first and last time')

  for (let i = 0; i < 2; i++) t.equal((await loginForm(app, email, PASSWORD)).statusCode, 429, 'locked out, even with the right password')
  const locked = await until(async () => (await timeline(app, token)).find((e) => e.kind === 'locked_out' && e.count === 2), 5000, 'the lockout')
  t.match(locked, { ip: '127.0.0.1', reason: 'address_and_ip' })
  const events = await timeline(app, token)
  t.same(kinds(events), ['locked_out', 'sign_in_failed', 'signed_in'], 'one event each, however many tries')

  const unknown = uniqueEmail('nobody')
  for (let i = 0; i < 4; i++) await loginForm(app, unknown, 'wrong password!')
  await app.securityEvents.settled()
  t.equal(await db(app).collection('security_events').countDocuments({}), 3, 'an unknown address records nothing')
})

t.test('ending one session from the list, and logging out everywhere, are one event each', async (t) => {
  const app = await build(t)
  const { email, token } = await signUp(app)
  const other = await loginAs(app, email, 'agent/2')
  await loginAs(app, email, 'agent/3')
  const ended = await app.inject({ method: 'DELETE', url: `/users/me/sessions/${sessionOf(other.access_token)}`, headers: bearer(token) })
  t.equal(ended.statusCode, 204)
  t.match((await timeline(app, token))[0], { kind: 'session_ended', reason: 'revoked', session_id: sessionOf(other.access_token), count: 1 })

  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(token) })).statusCode, 204)
  const fresh = await loginAs(app, email, 'agent/4')
  const events = await timeline(app, fresh.access_token)
  t.same(kinds(events).slice(0, 2), ['signed_in', 'session_ended'])
  t.match(events[1], { reason: 'signed_out_everywhere', count: 2 })
  t.notOk('session_id' in events[1]!, 'an event for several sessions names none')
})

t.test('parallel wrong passwords are still one event', async (t) => {
  const app = await build(t, { LOGIN_MAX_FAILURES: '10' })
  const { email, token } = await signUp(app)
  const answers = await Promise.all(Array.from({ length: 8 }, () => loginForm(app, email, 'wrong password!')))
  t.same(answers.map((a) => a.statusCode), Array(8).fill(401))
  await app.securityEvents.settled()
  const failed = (await timeline(app, token)).filter((e) => e.kind === 'sign_in_failed')
  t.equal(failed.length, 1, 'one group')
  t.ok(failed[0]!.count! >= 1 && failed[0]!.count! <= 8, `counted (${failed[0]!.count}; FerretDB may lose racing increments)`)
})

t.test('newest first, in pages; another user sees none of it', async (t) => {
  const app = await build(t)
  const { email, token } = await signUp(app)
  for (let i = 0; i < 4; i++) await loginAs(app, email, `agent/${i}`)
  const all = await timeline(app, token)
  t.equal(all.length, 5)
  t.same(all.map((e) => e.user_agent).slice(0, 4), ['agent/3', 'agent/2', 'agent/1', 'agent/0'], 'newest first')

  const one = (await page(app, token, '?limit=2')).json()
  t.same(one.events.map((e: SecurityEvent) => e.id), all.slice(0, 2).map((e) => e.id))
  t.equal(one.next_before, all[1]!.id)
  const two = (await page(app, token, `?limit=2&before=${one.next_before}`)).json()
  t.same(two.events.map((e: SecurityEvent) => e.id), all.slice(2, 4).map((e) => e.id))
  const three = (await page(app, token, `?limit=2&before=${two.next_before}`)).json()
  t.same(three.events.map((e: SecurityEvent) => e.id), [all[4]!.id])
  t.equal(three.next_before, null, 'the last page')
  t.equal((await page(app, token)).json().events.length, 5, 'default limit 20')

  const stranger = await signUp(app)
  const theirs = await timeline(app, stranger.token)
  t.same(kinds(theirs), ['signed_in'], 'only their own sign-in')
  t.same((await page(app, stranger.token, `?before=${'f'.repeat(24)}`)).json().events.map((e: SecurityEvent) => e.id), theirs.map((e) => e.id))

  assertValidation(t, await page(app, token, '?limit=101'), ['query', 'limit'])
  assertValidation(t, await page(app, token, '?before=nope'), ['query', 'before'])
  assertProblem(t, await app.inject({ url: '/users/me/events' }), 401)
})

t.test('"this wasn\'t me" leaves only the caller\'s session, voids reset links and mails a working one', async (t) => {
  const { app, smtp, email } = await registered(t, { VERIFICATION_RESEND_SECONDS: '0' })
  const a = await loginAs(app, email, 'agent-a/1.0')
  const b = await loginAs(app, email, 'intruder-b/6.6')
  const c = await loginAs(app, email, 'agent-c/3.0')
  const earlier = await resetToken(app, smtp, email)

  const suspicious = (await timeline(app, a.access_token)).find((e) => e.user_agent === 'intruder-b/6.6')!
  const url = `/users/me/events/${suspicious.id}/not-me`
  const stranger = await signUp(app)
  assertProblem(t, await app.inject({ method: 'POST', url, headers: stranger.headers }), 404, 'Event not found')
  assertProblem(t, await app.inject({ method: 'POST', url: `/users/me/events/${new ObjectId().toHexString()}/not-me`, headers: bearer(a.access_token) }), 404)
  assertProblem(t, await app.inject({ method: 'POST', url: '/users/me/events/nope/not-me', headers: bearer(a.access_token) }), 404)
  t.equal((await app.inject({ url: '/users/me', headers: bearer(b.access_token) })).statusCode, 200, 'refusals change nothing')

  const res = await app.inject({ method: 'POST', url, headers: { ...bearer(a.access_token), 'user-agent': 'agent-a/1.0' } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { detail: 'Every other session was signed out; a password reset link is on its way.', sessions_ended: 2 })

  for (const other of [b, c]) {
    t.equal((await app.inject({ url: '/users/me', headers: bearer(other.access_token) })).statusCode, 401, 'another session ended')
    t.equal((await post(app, '/auth/refresh', { refresh_token: other.refresh_token })).statusCode, 401, 'with its refresh token')
  }
  const sessions = (await app.inject({ url: '/users/me/sessions', headers: bearer(a.access_token) })).json()
  t.same(sessions.map((s: { id: string }) => s.id), [sessionOf(a.access_token)], 'only the caller\'s session is left')

  assertProblem(t, await post(app, '/auth/reset-password', { token: earlier, new_password: 'attacker password 1' }), 400, 'Invalid or expired reset token')

  const mail = await mailFor(smtp, email, 'Your account was secured')
  t.match(mail.text, /2 other sessions were signed out/)
  t.match(mail.text, /a sign-in, at \d{4}-/)
  t.match(mail.text, /127\.0\.0\.1/)
  t.match(mail.text, /"intruder-b\/6\.6"/)
  const fresh = tokenOf(mail)
  t.not(fresh, earlier)
  t.equal((await post(app, '/auth/reset-password', { token: fresh, new_password: 'owner password again' })).statusCode, 200, 'the mailed link works')

  const owner = await loginAs(app, email, 'agent-a/1.0', 'owner password again')
  const events = await timeline(app, owner.access_token)
  const report = events.find((e) => e.kind === 'not_me_reported')
  t.match(report, { event_id: suspicious.id, session_id: sessionOf(a.access_token), count: 2, user_agent: 'agent-a/1.0' })
  t.match(events.find((e) => e.kind === 'session_ended' && e.reason === 'not_me'), { count: 2 })
  t.equal(smtp.mails.filter((m) => m.subject === SUBJECTS.reset).length, 1, 'one forgot-password mail, besides the report\'s')

  const again = await app.inject({ method: 'POST', url, headers: bearer(owner.access_token) })
  t.equal(again.statusCode, 200)
  t.equal(again.json().sessions_ended, 0, 'a second press has no other session to end')
  t.equal((await app.inject({ url: '/users/me', headers: bearer(owner.access_token) })).statusCode, 200, 'and keeps the caller\'s')
  t.match((await mailFor(smtp, email, 'Your account was secured', 2)).text, /0 other sessions were signed out/, 'and mails again')
})

t.test('events older than SECURITY_EVENTS_DAYS are pruned; all go with the account', async (t) => {
  const app = await build(t, { SECURITY_EVENTS_DAYS: '30' })
  const { email, token, user } = await signUp(app)
  const userId = new ObjectId(user.id as string)
  const events = db(app).collection('security_events')
  const old = ObjectId.createFromTime(Math.floor(Date.now() / 1000) - 31 * 86_400)
  const recent = ObjectId.createFromTime(Math.floor(Date.now() / 1000) - 29 * 86_400)
  await events.insertMany([
    { _id: old, user_id: userId, kind: 'email_verified', at: old.getTimestamp() },
    { _id: recent, user_id: userId, kind: 'password_changed', at: recent.getTimestamp() }
  ])
  t.same(kinds(await timeline(app, token)), ['signed_in', 'password_changed', 'email_verified'])
  t.equal(await app.securityEvents.prune(), 1)
  t.same(kinds(await timeline(app, token)), ['signed_in', 'password_changed'], 'the 31-day-old event is gone, the 29-day-old one stays')

  const other = await signUp(app)
  const deleted = await app.inject({ method: 'DELETE', url: '/users/me', headers: bearer(token), payload: { password: PASSWORD } })
  t.equal(deleted.statusCode, 204)
  t.equal(await events.countDocuments({ user_id: userId }), 0, `no event of ${email} is left`)
  t.equal(await events.countDocuments({ user_id: new ObjectId(other.user.id as string) }), 1, 'other users keep theirs')
})

t.test('the OpenAPI document describes both routes', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json()
  const list = doc.paths['/users/me/events'].get
  t.equal(list.operationId, 'listSecurityEvents')
  t.same(list.responses['200'].content['application/json'].schema, { $ref: '#/components/schemas/SecurityEventPage' })
  t.ok(list.parameters.some((p: { name: string }) => p.name === 'before'))
  const report = doc.paths['/users/me/events/{event_id}/not-me'].post
  t.equal(report.operationId, 'reportSecurityEvent')
  t.ok(report.responses['404'], 'documents its 404')
  t.same(report.security, [{ OAuth2PasswordBearer: [] }])
  const event = doc.components.schemas.SecurityEvent
  t.ok(event.properties.kind.enum.includes('refresh_token_reused'), 'the kinds are a closed list')
  t.equal(event.additionalProperties, false)
})
