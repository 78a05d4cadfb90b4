import { request } from 'node:http'
import { connect } from 'node:net'
import t from 'tap'
import { build, listen } from '../support/app.js'
import { assertProblem, assertValidation } from '../support/problems.js'
import { until } from '../support/until.js'
import { signUp } from '../support/users.js'

t.test('unknown route: 404 problem "Not Found"', async (t) => {
  const app = await build(t)
  const body = assertProblem(t, await app.inject({ url: '/nope' }), 404)
  t.equal(body.detail, 'Not Found')
  t.equal(body.title, 'Not Found')
})

t.test('a known path with another method: 405 problem "Method Not Allowed" with Allow', async (t) => {
  const app = await build(t)
  const cases: Array<[string, string, string]> = [
    ['GET', '/auth/login', 'POST'],
    ['DELETE', '/chat/', 'POST, GET'],
    ['PATCH', '/chat/0123456789abcdef01234567', 'GET, PUT, DELETE'],
    ['PUT', '/users/me', 'GET, DELETE'],
    ['POST', '/health', 'GET']
  ]
  for (const [method, url, allow] of cases) {
    const res = await app.inject({ method: method as 'GET', url })
    const body = assertProblem(t, res, 405, 'Method Not Allowed')
    t.equal(body.title, 'Method Not Allowed', `${method} ${url}: title`)
    t.same(res.headers.allow?.toString().split(', ').sort(), allow.split(', ').sort(), `${method} ${url}: Allow ${allow}`)
  }
  assertProblem(t, await app.inject({ method: 'DELETE', url: '/nope' }), 404, 'Not Found')

  // QUERY (RFC 10008) without a Content-Type is refused by Fastify before routing; still a 405 here.
  const base = await listen(app)
  const query = await new Promise<{ status?: number, allow?: string, body: string }>((resolve, reject) => {
    request(`${base}/auth/login`, { method: 'QUERY' }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode, allow: res.headers.allow, body }))
    }).on('error', reject).end()
  })
  t.same([query.status, query.allow, JSON.parse(query.body).detail], [405, 'POST', 'Method Not Allowed'], 'QUERY /auth/login: 405, Allow POST')
})

t.test('a body over the route limit: 413, nothing stored', async (t) => {
  const app = await build(t)
  const res = await app.inject({
    method: 'POST', url: '/auth/register', payload: { email: 'big@example.com', password: 'x'.repeat(20_000) }
  })
  assertProblem(t, res, 413)
  t.equal(await app.mongo.db!.collection('users').countDocuments(), 0)
})

t.test('a 10 MiB body sent chunked, without Content-Length, over a real socket: 413 early', async (t) => {
  const app = await build(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const { request } = await import('node:http')
  let sent = 0
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/auth/register', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
      req.destroy()
    })
    req.on('error', (error: NodeJS.ErrnoException) => { if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error) })
    const chunk = '[' + 'x'.repeat(16 * 1024) + ']'
    const pump = () => {
      while (sent < 10 * 1024 * 1024 && !req.destroyed) {
        sent += chunk.length
        if (!req.write(chunk)) return req.once('drain', pump)
      }
      if (!req.destroyed) req.end()
    }
    pump()
  })
  t.equal(status, 413)
  t.ok(sent < 10 * 1024 * 1024, `answered before the whole body was sent (${sent} bytes written)`)
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'process alive')
})

t.test('unsupported content types: 415 before the body is read', async (t) => {
  const app = await build(t)
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
    const res = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': type }, payload: 'email=a@example.com&password=longenough1' })
    assertProblem(t, res, 415)
  }
  t.equal(await app.mongo.db!.collection('users').countDocuments(), 0)
})

t.test('malformed JSON: 400 with a clear detail', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'content-type': 'application/json' }, payload: '{"email": ' })
  t.equal(assertProblem(t, res, 400).detail, 'Body is not valid JSON')
})

t.test('prototype poisoning is refused', async (t) => {
  const app = await build(t)
  const res = await app.inject({
    method: 'POST',
    url: '/auth/register',
    headers: { 'content-type': 'application/json' },
    payload: '{"email":"a@example.com","password":"longenough1","__proto__":{"admin":true}}'
  })
  assertProblem(t, res, 400)
  t.equal(await app.mongo.db!.collection('users').countDocuments(), 0)
})

t.test('deeply nested JSON: 400, process unharmed', async (t) => {
  const app = await build(t)
  const { headers } = await signUp(app)
  for (const depth of [10_000, 100_000]) {
    const payload = `{"title":${'['.repeat(depth)}${']'.repeat(depth)}}`
    const res = await app.inject({ method: 'POST', url: '/chat/', headers: { ...headers, 'content-type': 'application/json' }, payload })
    t.equal(assertProblem(t, res, 400).detail, 'Body is nested too deeply', `${depth} levels`)
  }
  t.equal(await app.mongo.db!.collection('chats').countDocuments(), 0)
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)
})

t.test('validation errors: 422 listing every problem in FastAPI shape', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'not-an-email', password: 'short' } })
  const body = assertProblem(t, res, 422)
  t.equal(body.detail.length, 2)
  t.same(body.detail.map((e: { loc: string[] }) => e.loc), [['body', 'email'], ['body', 'password']])
  t.match(body.detail[1], { msg: 'String should have at least 8 characters', type: 'string_too_short' })
})

t.test('an unexpected error: generic 500, details only in the log', async (t) => {
  const app = await build(t, {}, {
    extend: (app) => app.get('/boom', async () => { throw new Error('driver said: E11000 at /srv/app/secret.ts') })
  })
  const res = await app.inject({ url: '/boom' })
  const body = assertProblem(t, res, 500)
  t.equal(body.detail, 'Internal Server Error')
  t.notMatch(res.body, /E11000|secret\.ts|stack/)
  const logged = app.logs.lines.find((l) => l.msg === 'request failed')
  t.ok(logged, 'the error is logged')
  t.equal(logged?.request_id, body.request_id, 'with the request id')
})

/** Helmet's headers with the API's policy, as every JSON answer carries them. */
const securityHeaders = {
  'content-security-policy': "default-src 'none';frame-ancestors 'none'",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-site',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0'
}

t.test('security headers and no-store on API answers', async (t) => {
  const app = await build(t)
  const { headers } = await signUp(app)
  for (const [url, auth] of [['/users/me', headers], ['/chat/', headers], ['/nope', headers], ['/health', {}], ['/users/me', {}]] as const) {
    const res = await app.inject({ url, headers: auth })
    t.match(res.headers, securityHeaders, `${url} (${res.statusCode}): helmet's headers`)
    t.equal(res.headers['x-powered-by'], undefined, url)
    t.equal(res.headers['cache-control'], 'no-store', url)
    t.match(String(res.headers['content-type']), /charset=utf-8/, url)
  }
})

t.test('CORS: any origin by default, without credentials', async (t) => {
  const app = await build(t)
  const res = await app.inject({
    method: 'OPTIONS',
    url: '/auth/login',
    headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' }
  })
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], '*')
  t.match(String(res.headers['access-control-allow-methods']), /PATCH/)
  t.match(String(res.headers['access-control-allow-headers']).toLowerCase(), /authorization/)
  t.notOk(res.headers['access-control-allow-credentials'])
})

t.test('CORS: listed origins with credentials, others refused', async (t) => {
  const app = await build(t, { CORS_ORIGINS: 'http://app.example, http://localhost:3000' })
  const listed = await app.inject({ url: '/health', headers: { origin: 'http://localhost:3000' } })
  t.equal(listed.headers['access-control-allow-origin'], 'http://localhost:3000')
  t.equal(listed.headers['access-control-allow-credentials'], 'true')
  const other = await app.inject({ url: '/health', headers: { origin: 'http://evil.example' } })
  t.notOk(other.headers['access-control-allow-origin'])
})

t.test('an over-long array of invalid items: one small 422 naming the list, the process unharmed', async (t) => {
  const app = await build(t)
  const { headers } = await signUp(app)
  // 100,000 empty messages (about 300 KiB), with a bad title before them.
  const payload = `{"title":1,"messages":[${Array(100_000).fill('{}').join(',')}]}`
  const res = await app.inject({ method: 'POST', url: '/chat/', headers: { ...headers, 'content-type': 'application/json' }, payload })
  t.ok(res.body.length < 2048, `a small answer (${res.body.length} bytes)`)
  const body = assertProblem(t, res, 422)
  t.match(body.detail.find((e: { loc: string[] }) => e.loc[1] === 'messages'), { msg: 'List should have at most 100 items', type: 'too_long' })
  t.ok(body.detail.some((e: { loc: string[] }) => e.loc[1] === 'title'), 'the other problem still listed')
  t.notOk(body.detail.some((e: { loc: unknown[] }) => e.loc.length > 2), 'no problem per item')

  const within = await app.inject({ method: 'POST', url: '/chat/', headers, payload: { messages: [{}, { role: 'user', content: 'hi' }] } })
  t.same(assertValidation(t, within, ['body', 'messages', 0, 'role']).detail.map((e: { loc: unknown[] }) => e.loc),
    [['body', 'messages', 0, 'role'], ['body', 'messages', 0, 'content']], 'items of a list within its limit are still checked one by one')
  t.equal(await app.mongo.db!.collection('chats').countDocuments(), 0)
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)
})

t.test('integer query parameters out of any range (Infinity, 1e400, past int32): 422, never a driver error', async (t) => {
  const app = await build(t)
  const { headers } = await signUp(app)
  const chat = await app.inject({ method: 'POST', url: '/chat/', headers, payload: { title: 'x' } })
  const messages = `/chat/${chat.json().id as string}/messages`
  for (const value of ['Infinity', '-Infinity', '1e400', '2147483648', '1e20', '-1']) {
    assertValidation(t, await app.inject({ url: `/chat/?skip=${value}`, headers }), ['query', 'skip'])
    assertValidation(t, await app.inject({ url: `/chat/?limit=${value}`, headers }), ['query', 'limit'])
    assertValidation(t, await app.inject({ url: `${messages}?limit=${value}`, headers }), ['query', 'limit'])
  }
  for (const value of ['-0', '0', '2147483647']) {
    t.equal((await app.inject({ url: `/chat/?skip=${value}`, headers })).statusCode, 200, `skip=${value}`)
  }
  t.notOk(app.logs.lines.some((l) => Number(l.level) >= 50), 'nothing logged as an error')
})

/** Bytes written on a fresh socket, and the raw HTTP answer the server gives before it closes. */
async function rawExchange (base: string, bytes: string) {
  const { port } = new URL(base)
  const socket = connect(Number(port), '127.0.0.1')
  socket.write(bytes)
  let raw = ''
  for await (const chunk of socket) raw += (chunk as Buffer).toString('latin1')
  const [head = '', body = ''] = raw.split('\r\n\r\n', 2)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
  return { status: Number(statusLine.split(' ')[1]), headers, body }
}

t.test('router and HTTP parse errors: problem+json with a request id and the security headers, logged without the path', async (t) => {
  const app = await build(t)
  const base = await listen(app)
  const token = 'secret-token-' + 'x'.repeat(700)
  const cases: Array<[string, number, string]> = [
    ['a bad %-escape', 400, `GET /auth/verify/${token.slice(0, 40)}%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`],
    ['a path parameter over the limit', 414, `GET /auth/verify/${token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`],
    ['headers over the limit', 431, `GET /auth/verify/${token.slice(0, 40)} HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(20_000)}\r\n\r\n`],
    ['a garbage request line', 400, `GET /auth/verify/${token.slice(0, 40)} GARBAGE\r\n\r\n`]
  ]
  for (const [name, status, bytes] of cases) {
    const res = await rawExchange(base, bytes)
    t.equal(res.status, status, `${name}: ${status}`)
    t.match(res.headers['content-type'], /^application\/problem\+json/, `${name}: problem+json`)
    t.match(res.headers, securityHeaders, `${name}: helmet's headers`)
    t.equal(res.headers['cache-control'], 'no-store', `${name}: no-store`)
    const body = JSON.parse(res.body)
    t.same(Object.keys(body).sort(), ['detail', 'request_id', 'status', 'title', 'type'], `${name}: the problem fields`)
    t.equal(body.status, status)
    t.match(body.request_id, /^[0-9a-f-]{36}$/, `${name}: a request id`)
    t.equal(res.headers['x-request-id'], body.request_id, `${name}: the same request id in x-request-id`)
    t.notMatch(res.body, /secret-token/, `${name}: the path is not echoed`)
    await until(() => typeof body.request_id === 'string' && app.logs.lines.some((l) => l.request_id === body.request_id), 2000, `${name}: a log line`)
  }
  t.notOk(app.logs.text().includes('secret-token-xxxxxxxxxx'), 'no token in the log')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)
})
