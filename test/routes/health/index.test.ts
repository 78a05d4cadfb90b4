import { once } from 'node:events'
import { connect, type AddressInfo } from 'node:net'
import t from 'tap'
import { build, type TestApp } from '../../support/app.js'
import { until } from '../../support/until.js'

const PROBLEM = 'application/problem+json; charset=utf-8'

t.test('GET /health answers without the database', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/health' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
  t.equal((await app.inject({ url: '/health/' })).statusCode, 200, 'trailing slash works too')
})

t.test('GET /health/ready pings the database', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/health/ready' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('GET /health/live answers from the process alone, and is documented', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/health/live' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.same(res.json(), { status: 'ok' })
  t.equal((await app.inject({ url: '/health/live/' })).statusCode, 200, 'trailing slash works too')

  const live = (await app.inject({ url: '/openapi.json' })).json().paths['/health/live'].get
  t.match(live, { operationId: 'live', tags: ['Health'] })
  t.same(live.responses['200'].content['application/json'].schema, { $ref: '#/components/schemas/Health' })

  const status = await app.inject({ url: '/status' })
  t.equal(status.statusCode, 404, 'under-pressure adds no status route of its own')
  t.equal(status.headers['content-type'], PROBLEM)
})

interface Answer { status: number, headers: Record<string, string>, body: string }

/** Splits what a connection received into its HTTP/1.1 answers (each with a Content-Length). */
function parseAnswers (received: string): Answer[] {
  const answers: Answer[] = []
  let rest = received
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n')
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n')
    const headers = Object.fromEntries(lines.map((line) => {
      const colon = line.indexOf(':')
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
    }))
    const length = Number(headers['content-length'])
    answers.push({ status: Number(statusLine!.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + length) })
    rest = rest.slice(end + 4 + length)
  }
  return answers
}

const LOGIN_BODY = 'username=nobody%40example.com&password=not-the-password'

/**
 * A login whose body is only half sent: a request in flight that keeps `close()` waiting. `finish`
 * sends the rest with `path` pipelined behind it, and resolves with every answer once the server
 * has closed the connection.
 */
async function halfSentLogin (port: number) {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('utf8') })
  const closed = once(socket, 'close')
  socket.write('POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
    `Content-Length: ${LOGIN_BODY.length}\r\n\r\n${LOGIN_BODY.slice(0, 10)}`)
  return async (path: string) => {
    socket.write(`${LOGIN_BODY.slice(10)}GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
    await closed
    return parseAnswers(received)
  }
}

function loginsTaken (app: TestApp) {
  return app.logs.lines.filter((line) => line.msg === 'incoming request' && (line.req as { url?: string })?.url === '/auth/login').length
}

t.test('while the server closes: new requests get 503 problem+json with Retry-After and Connection: close; liveness stays 200', async (t) => {
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const held = [await halfSentLogin(port), await halfSentLogin(port), await halfSentLogin(port)]
  await until(async () => loginsTaken(app) === 3, 10_000, 'the server to take the three logins')

  const closed = app.close()
  await until(async () => !app.server.listening, 10_000, 'the server to stop listening')
  const [ready, live, me] = await Promise.all([held[0]!('/health/ready'), held[1]!('/health/live'), held[2]!('/users/me')])
  await closed

  for (const answers of [ready, live, me]) {
    t.equal(answers[0]?.status, 401, 'the login in flight when closing began is finished as usual')
  }
  const turnedAway = [ready[1], me[1]]
  for (const [i, answer] of turnedAway.entries()) {
    const name = ['/health/ready', '/users/me'][i]
    t.equal(answer?.status, 503, `${name}: 503`)
    t.equal(answer?.headers['content-type'], PROBLEM, `${name}: problem+json`)
    t.equal(answer?.headers['retry-after'], '5', `${name}: Retry-After`)
    t.equal(answer?.headers.connection, 'close', `${name}: Connection: close`)
    const body = JSON.parse(answer!.body)
    t.same(Object.keys(body).sort(), ['detail', 'request_id', 'status', 'title', 'type'], `${name}: the problem fields`)
    t.match(body, { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'Service temporarily unavailable, retry shortly' })
    t.equal(answer?.headers['x-request-id'], body.request_id, `${name}: X-Request-Id`)
    t.equal(answer?.headers['cache-control'], 'no-store', `${name}: no-store`)
  }
  t.equal(live[1]?.status, 200, '/health/live still answers')
  t.same(JSON.parse(live[1]!.body), { status: 'ok' })

  const warnings = app.logs.lines.filter((line) => line.msg === 'service unavailable')
  t.equal(warnings.length, 2, 'each turned-away request is logged once')
  t.ok(warnings.every((line) => line.level === 40 && line.reason === 'server is shutting down'), 'at warn, with the reason')
  t.notOk(app.logs.lines.some((line) => line.msg === 'database ping failed'), 'readiness answered before any ping')
})

t.test('under pressure (heap above PRESSURE_MAX_HEAP_BYTES): 503 problem+json with Retry-After; liveness stays 200', async (t) => {
  const app = await build(t, { PRESSURE_MAX_HEAP_BYTES: '1' })
  await until(async () => app.isUnderPressure(), 10_000, 'the first memory sample')

  for (const request of [
    { method: 'POST' as const, url: '/auth/register', payload: { email: 'pressure@example.com', password: 'long enough password' } },
    { method: 'GET' as const, url: '/health/ready' }
  ]) {
    const res = await app.inject(request)
    t.equal(res.statusCode, 503, `${request.url}: 503`)
    t.equal(res.headers['content-type'], PROBLEM)
    t.equal(res.headers['retry-after'], '5')
    t.match(res.json(), { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'Service temporarily unavailable, retry shortly', request_id: String })
    t.equal(res.headers['x-request-id'], res.json().request_id, 'X-Request-Id')
    t.equal(res.headers['cache-control'], 'no-store', 'no-store')
  }
  for (const url of ['/health/live', '/health']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, `${url} still answers`)
    t.same(res.json(), { status: 'ok' })
  }
  const warning = app.logs.lines.find((line) => line.msg === 'service unavailable')
  t.match(warning, { level: 40, reason: /^under pressure: heapUsedBytes \d+$/ }, 'logged at warn with the reason')
})
