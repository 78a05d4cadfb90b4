import { readFileSync } from 'node:fs'
import { ObjectId } from 'mongodb'
import t, { type Test } from 'tap'
import { startFerretdb } from '../../scripts/ferretdb.js'
import { build, TEST_SECRET } from '../support/app.js'
import { DEADLINE_MARGIN_MS } from '../../plugins/app/platform/request-deadline.js'
import { messages } from '../support/chat.js'
import { startDatabaseProxy } from '../support/database-proxy.js'
import { databaseUrl } from '../support/database.js'
import { until } from '../support/until.js'
import { loginForm, signUp } from '../support/users.js'

/** SIGSTOP, then wait until the kernel shows the process stopped (delivery waits for it to run). */
async function pause (pid: number) {
  process.kill(pid, 'SIGSTOP')
  await until(() => /^\d+ \(.*\) [Tt]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')), 5000, `process ${pid} to stop`, 10)
}

t.test('a paused database: 503 with Retry-After within the time limit, liveness unaffected, recovery without restart', async (t) => {
  const db = await startFerretdb()
  t.teardown(() => db.stop())
  const app = await build(t, { MONGODB_URL: db.url, DATABASE_TIMEOUT_MS: '1500' })
  const { headers } = await signUp(app)

  await pause(db.process.pid!)
  t.teardown(() => { db.process.kill('SIGCONT') })

  const started = Date.now()
  const me = await app.inject({ url: '/users/me', headers })
  const waited = Date.now() - started
  t.equal(me.statusCode, 503, me.body)
  t.equal(me.headers['retry-after'], '5')
  t.match(me.headers['content-type'], /application\/problem\+json/)
  t.equal(me.json().detail, 'Service temporarily unavailable, retry shortly')
  t.notMatch(me.body, /Mongo|127\.0\.0\.1|timed out/, 'no driver message in the body')
  t.ok(waited < 1500 + 3000, `answered after ${waited} ms, bounded by the time limit`)

  const chat = await app.inject({ method: 'POST', url: '/chat/', headers, payload: { title: 'x' } })
  t.equal(chat.statusCode, 503, 'writes too')

  t.equal((await app.inject({ url: '/health' })).statusCode, 200, '/health does not touch the database')
  const ready = await app.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 503, '/health/ready says not ready')

  db.process.kill('SIGCONT')
  t.ok(await until(async () => (await app.inject({ url: '/users/me', headers })).statusCode === 200, 20_000, 'a 200', 200),
    'requests succeed again once the database is back')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
})

t.test('a paused database whose connections reset just before the time limit: still a 503 within DATABASE_TIMEOUT_MS, not after a retry\'s full wait', async (t) => {
  const db = await startFerretdb()
  t.teardown(() => db.stop())
  const proxy = await startDatabaseProxy(db.url)
  t.teardown(() => proxy.close())
  const limit = 3000
  const app = await build(t, { MONGODB_URL: proxy.url, DATABASE_TIMEOUT_MS: String(limit) })
  const { headers } = await signUp(app)

  await pause(db.process.pid!)
  t.teardown(() => { db.process.kill('SIGCONT') })
  const started = Date.now()
  const answer = app.inject({ url: '/users/me', headers })
  setTimeout(() => proxy.reset(), limit * 0.9)
  const me = await answer
  const waited = Date.now() - started
  t.equal(me.statusCode, 503, me.body)
  // A retry with a full wait of its own would answer near 1.9 × the limit.
  t.ok(waited < 1.5 * limit, `answered after ${waited} ms: the time limit (${limit} ms) bounds the retry too`)
})

/** The app through the test proxy, with a 2 s limit, so that a test can slow the database down (`proxy.delay`). */
async function slowDatabaseApp (t: Test) {
  const proxy = await startDatabaseProxy(await databaseUrl())
  t.teardown(() => proxy.close())
  const limit = 2000
  const app = await build(t, { MONGODB_URL: proxy.url, DATABASE_TIMEOUT_MS: String(limit) })
  return { app, proxy, limit }
}

t.test('a slow database: a login whose round trips, one after another, outlast the limit gets a 503 within DATABASE_TIMEOUT_MS plus the margin; its late end is logged once', async (t) => {
  const { app, proxy, limit } = await slowDatabaseApp(t)
  const { email, password } = await signUp(app)

  // Each round trip stays under the limit, so no single wait of the driver ends the request.
  proxy.delay(limit * 0.6)
  const started = Date.now()
  const res = await loginForm(app, email, password)
  const waited = Date.now() - started
  t.equal(res.statusCode, 503, res.body)
  t.equal(res.headers['retry-after'], '5')
  t.equal(res.json().detail, 'Service temporarily unavailable, retry shortly')
  t.equal(res.headers['x-request-id'], res.json().request_id)
  t.ok(waited < limit + DEADLINE_MARGIN_MS + 1000, `answered after ${waited} ms: the limit (${limit} ms) plus ${DEADLINE_MARGIN_MS} ms bounds the whole request`)
  t.notMatch(res.body, /access_token/)

  const late = await until(() => app.logs.lines.find((l) => l.msg === 'request finished after its time limit had answered 503'), 20_000, 'the late outcome', 50)
  t.equal(late.request_id, res.json().request_id, 'logged against the request')
  t.notOk(app.logs.lines.some((l) => /already sent|reply\.sent/i.test(String(l.msg)) || /already sent/i.test(String((l.err as { message?: string } | undefined)?.message))),
    'no second answer attempted')
  proxy.delay(0)
  t.equal((await loginForm(app, email, password)).statusCode, 200, 'and the next login is served')
})

t.test('a slow database: a stream whose start outlasts the time limit gets a 503, and the reply stored for it ends interrupted, not streaming', async (t) => {
  const { app, proxy, limit } = await slowDatabaseApp(t)
  const { headers, user } = await signUp(app)

  // Each round trip stays under the limit; the three a new chat's stream makes in turn do not.
  proxy.delay(limit * 0.6)
  const started = Date.now()
  const res = await app.inject({ method: 'POST', url: '/chat/stream', headers, payload: { message: 'hello there' } })
  const waited = Date.now() - started
  t.equal(res.statusCode, 503, res.body)
  t.match(res.headers['content-type'], /application\/problem\+json/)
  t.ok(waited < limit + DEADLINE_MARGIN_MS + 1000, `answered after ${waited} ms`)
  proxy.delay(0)

  const reply = await until(async () => {
    const [stored] = await messages(app).find({ user_id: new ObjectId(user.id as string), role: 'assistant' }).toArray()
    return stored && stored.status !== 'streaming' ? stored : undefined
  }, 20_000, 'the reply to be finished', 100)
  t.equal(reply.status, 'interrupted', 'marked as ended early')
  t.ok(await until(() => app.logs.lines.some((l) => l.msg === 'request finished after its time limit had answered 503'), 10_000, 'the late outcome', 50))
  t.notOk(app.logs.lines.some((l) => Number(l.level) >= 50), 'nothing logged as an error (no headers written twice)')
  t.equal((await app.inject({ url: '/users/me', headers })).statusCode, 200, 'the process serves on')
})

t.test('a database that went away: 503, not 500', async (t) => {
  const db = await startFerretdb()
  t.teardown(() => db.stop())
  const app = await build(t, { MONGODB_URL: db.url, DATABASE_TIMEOUT_MS: '1500' })
  const { headers } = await signUp(app)
  await db.stop()
  const res = await app.inject({ url: '/chat/', headers })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
})

t.test('no database at boot: the service starts, answers 503, and becomes ready once the database appears', async (t) => {
  const { createServer } = await import('node:net')
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
  const app = await build(t, { MONGODB_URL: `mongodb://127.0.0.1:${port}/`, DATABASE_TIMEOUT_MS: '1000' }, { waitForDatabase: false })

  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'alive')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready')
  const register = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'early@example.com', password: 'long enough password' } })
  t.equal(register.statusCode, 503, 'writes wait for the database')
  t.equal(register.headers['retry-after'], '5')
  t.equal((await app.inject({ url: '/openapi.json' })).statusCode, 200, 'documentation does not need the database')
  const docs = await app.inject({ url: '/docs' })
  t.equal(docs.statusCode, 200, 'nor does Swagger UI')
  t.match(docs.headers['content-type'], /^text\/html/)
  t.equal((await app.inject({ url: '/docs/json' })).statusCode, 200, 'nor its copy of the document')

  const db = await startFerretdb({ port })
  t.teardown(() => db.stop())
  t.ok(await until(async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 20_000, 'readiness', 200), 'ready once the database is there')
  const late = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'late@example.com', password: 'long enough password' } })
  t.equal(late.statusCode, 200)
})

t.test('production on a standalone server (not a replica set): starts, with one warning', async (t) => {
  const warning = /^MongoDB is not a replica set/
  const production = await build(t, { NODE_ENV: 'production', SECRET_KEY: TEST_SECRET })
  t.equal(production.logs.lines.filter((l) => warning.test(String(l.msg)) && l.level === 40).length, 1, 'one warning (FerretDB answers hello without setName)')
  t.equal((await production.inject({ url: '/health/ready' })).statusCode, 200, 'and it is ready')
  const test = await build(t)
  t.notOk(test.logs.lines.some((l) => warning.test(String(l.msg))), 'no warning outside production')
})
