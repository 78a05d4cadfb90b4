/** GET /metrics: the Prometheus text format (checked by promtool), following the traffic sent. */
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { build, type TestApp } from '../support/app.js'
import { stream } from '../support/chat.js'
import { signUp } from '../support/users.js'
import { until } from '../support/until.js'

async function scrape (app: TestApp) {
  const res = await app.inject({ url: '/metrics' })
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
  return res.body
}

/** The value of the sample `name` whose labels include `labels` (undefined when there is none). */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/)
    if (!match || match[1] !== name) continue
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3])
  }
  return undefined
}

t.test('METRICS_ENABLED: Prometheus text that promtool accepts, whose numbers follow the traffic', async (t) => {
  const app = await build(t, { METRICS_ENABLED: 'true' })
  const before = await scrape(app)
  const me = { method: 'GET', route: '/users/me', status: '200' }

  const alice = await signUp(app)
  for (let i = 0; i < 3; i++) await app.inject({ url: '/users/me', headers: alice.headers })
  await app.inject({ url: '/users/me' })
  t.equal((await stream(app, alice.headers, { message: 'count me' })).statusCode, 200)
  await stream(app, alice.headers, { message: 'break [error]' })
  await until(async () => sample(await scrape(app), 'mail_attempts_total', { status: 'sent' }), 10_000, 'the verification mail to be sent')
  const after = await scrape(app)

  t.equal(sample(after, 'http_request_duration_seconds_count', me)! - (sample(before, 'http_request_duration_seconds_count', me) ?? 0), 3, 'three GET /users/me counted, by route pattern and status')
  t.equal(sample(after, 'http_request_duration_seconds_count', { route: '/users/me', status: '401' }), 1, 'the one without a token apart')
  t.equal(sample(after, 'http_request_duration_seconds_count', { route: '/auth/register', status: '200' }), 1, 'the sign-up')
  t.ok(sample(after, 'http_request_duration_seconds_bucket', { ...me, le: '+Inf' })! >= 3, 'with a latency histogram')
  t.equal(sample(after, 'chat_streams_total', { status: 'complete' }), 1, 'one stream completed')
  t.equal(sample(after, 'chat_streams_total', { status: 'error' }), 1, 'one ended in error')
  t.equal(sample(after, 'chat_streams_open'), 0, 'none open now')
  t.equal(sample(after, 'mail_outbox_entries', { status: 'pending' }), 0, 'the outbox is empty')
  t.equal(sample(after, 'password_hashes', { state: 'queued' }), 0, 'no hash queued')
  t.type(sample(after, 'nodejs_eventloop_lag_seconds'), 'number', 'the event-loop delay')

  const check = spawnSync('promtool', ['check', 'metrics'], { input: after, encoding: 'utf8' })
  t.equal(check.error?.message, undefined, 'promtool runs (Debian: apt-get install prometheus)')
  t.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`)
})

t.test('off by default: no /metrics', async (t) => {
  const app = await build(t)
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 404)
})

t.test('METRICS_PORT: /metrics on a port of its own, not on the API port', async (t) => {
  const app = await build(t, { METRICS_ENABLED: 'true', METRICS_PORT: '0' })
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 404, 'not on the API')
  const res = await fetch(`http://127.0.0.1:${app.metricsPort}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  t.match(await res.text(), /^# HELP /m)
})
