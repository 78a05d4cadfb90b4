import t from 'tap'
import { build } from '../support/app.js'

const methods = ['get', 'post', 'put', 'patch', 'delete'] as const

t.test('every route documents itself completely', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.equal(doc.openapi, '3.1.0')

  const operationIds = new Set<string>()
  let operations = 0
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const method of methods) {
      const op = item[method]
      if (!op) continue
      operations++
      const name = `${method.toUpperCase()} ${path}`
      t.ok(op.summary, `${name} has a summary`)
      t.ok(op.operationId && !operationIds.has(op.operationId), `${name} has a unique operationId`)
      operationIds.add(op.operationId)
      t.ok(op.tags?.length, `${name} has tags`)
      const statuses = Object.keys(op.responses ?? {})
      t.ok(statuses.some((s) => s.startsWith('2')), `${name} documents its success response`)
      for (const status of statuses.filter((s) => s !== '204')) {
        const content = op.responses[status].content ?? {}
        t.ok(Object.values<any>(content).some((c) => c.schema), `${name} ${status} has a response schema`)
      }
      if (op.requestBody) t.ok(Object.values<any>(op.requestBody.content).every((c) => c.schema), `${name} has a request schema`)
    }
  }
  t.ok(operations >= 17, `all routes are documented (${operations})`)
})

t.test('protected routes name the OAuth2 password flow of the login form', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json()
  t.same(doc.components.securitySchemes.OAuth2PasswordBearer, {
    type: 'oauth2', flows: { password: { tokenUrl: '/auth/login', scopes: {} } }
  })
  t.same(doc.paths['/users/me'].get.security, [{ OAuth2PasswordBearer: [] }])
  t.same(doc.paths['/chat/'].post.security, [{ OAuth2PasswordBearer: [] }])
  t.same(doc.paths['/auth/register'].post.security, [], 'public routes say they need no token')
  t.ok(doc.paths['/auth/login'].post.requestBody.content['application/x-www-form-urlencoded'], 'login is a form')
})

t.test('shared entities keep their names', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json()
  for (const name of ['User', 'Token', 'Chat', 'ChatListItem', 'Message', 'Problem', 'Detail']) {
    t.ok(doc.components.schemas[name], `${name} is a named component`)
  }
  t.notOk(doc.components.schemas.User.properties.password_hash, 'no hash in the user schema')
  t.same(doc.paths['/users/me'].get.responses['200'].content['application/json'].schema, { $ref: '#/components/schemas/User' })
  t.ok(doc.paths['/users/me'].get.responses['401'].content['application/problem+json'], 'errors are problem+json')
})

t.test('Swagger UI is served at /docs', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/docs/' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /swagger/i)
})

/** Every operation of the document, with its name. */
function operationsOf (doc: any) {
  return Object.entries<Record<string, any>>(doc.paths).flatMap(([path, item]) =>
    methods.filter((method) => item[method]).map((method) => ({ name: `${method.toUpperCase()} ${path}`, op: item[method] })))
}

const publicOperations = [
  'POST /auth/register', 'POST /auth/login', 'POST /auth/refresh', 'GET /auth/verify/{token}', 'POST /auth/verify',
  'POST /auth/resend-verification', 'POST /auth/forgot-password', 'POST /auth/reset-password', 'POST /auth/reset-password/{token}',
  'GET /health', 'GET /health/live', 'GET /health/ready'
]

t.test('a generator can use the document as it is', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json()
  const operations = operationsOf(doc)

  t.match(doc.servers, [{ url: '/' }, { url: /^http:\/\/[^/]+:\d+$/ }], 'servers to call: where the document came from, and this process')
  for (const { name, op } of operations) {
    t.same(op.security, publicOperations.includes(name) ? [] : [{ OAuth2PasswordBearer: [] }], `${name} says which token it needs`)
    for (const parameter of op.parameters ?? []) {
      if (parameter.schema?.default !== undefined) t.equal(parameter.required, false, `${name}: ${parameter.name} has a default, so it is optional`)
    }
    for (const [status, response] of Object.entries<any>(op.responses)) {
      if (status.startsWith('2')) t.not(response.description, 'Default Response', `${name} ${status} says what it is`)
      t.ok(response.headers?.['X-Request-Id'], `${name} ${status} declares X-Request-Id`)
      if (status === '401') t.ok(response.headers['WWW-Authenticate'], `${name} 401 declares WWW-Authenticate`)
      if (status === '429' || status === '503') t.ok(response.headers['Retry-After'], `${name} ${status} declares Retry-After`)
    }
  }

  // The original's query-only forms need no body.
  for (const name of ['POST /auth/resend-verification', 'POST /auth/forgot-password', 'POST /auth/reset-password/{token}']) {
    const { op } = operations.find((o) => o.name === name)!
    t.equal(op.requestBody.required, false, `${name}: the body is optional`)
  }
  t.same(doc.paths['/chat/'].get.parameters.map((p: any) => [p.name, p.required]), [['skip', false], ['limit', false]], 'skip and limit are optional')

  // Login: the OAuth2 form, with both of its fields required.
  const login = doc.paths['/auth/login'].post
  t.same(Object.keys(login.requestBody.content), ['application/x-www-form-urlencoded'], 'login offers the form only (JSON works too)')
  t.same(login.requestBody.content['application/x-www-form-urlencoded'].schema.required, ['username', 'password'], 'username and password are required')
  t.equal(login.responses['200'].headers['Cache-Control'] !== undefined, true, 'tokens come with Cache-Control')
})

t.test('enums are plain enums, not unions of one-value schemas', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json()
  const single = (s: any) => s && (s.const !== undefined || s.enum?.length === 1)
  const found: string[] = []
  const walk = (node: any, path: string) => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${path}/${i}`))
    if (typeof node !== 'object' || node === null) return
    for (const key of ['anyOf', 'oneOf']) if (node[key]?.length > 1 && node[key].every(single)) found.push(`${path}/${key}`)
    for (const [key, value] of Object.entries(node)) walk(value, `${path}/${key}`)
  }
  walk(doc, '#')
  t.same(found, [], 'no anyOf or oneOf of single values')
  t.same(doc.components.schemas.Message.properties.role, { type: 'string', enum: ['user', 'assistant', 'system'] }, 'a role is an enum')
  t.same(doc.components.schemas.Token.properties.token_type, { type: 'string', const: 'bearer' }, 'a constant is a const')
})

t.test('the stream\'s events are named schemas', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json()
  const schemas = doc.components.schemas
  const events = { start: 'StartEvent', message: 'TextEvent', error: 'ErrorEvent', done: 'DoneEvent' }
  for (const [event, name] of Object.entries(events)) {
    t.equal(schemas[name]?.properties.event.const, event, `${name} is the \`${event}\` event`)
    t.same(schemas[name].properties.data, {
      type: 'string', contentMediaType: 'application/json', contentSchema: { $ref: `#/components/schemas/${name}Data` }
    }, `${name} carries JSON data named ${name}Data`)
    t.ok(schemas[`${name}Data`]?.properties, `${name}Data is a named schema`)
  }
  t.same(schemas.StreamEvent.oneOf, Object.values(events).map((name) => ({ $ref: `#/components/schemas/${name}` })), 'a StreamEvent is one of them')
  t.same(schemas.DoneEventData.properties.status.enum, ['complete', 'interrupted', 'error'])
  for (const path of ['/chat/stream', '/chat/{chat_id}/regenerate']) {
    const ok = doc.paths[path].post.responses['200']
    t.same(ok.content['text/event-stream'].schema.anyOf[0], { $ref: '#/components/schemas/StreamEvent' }, `${path}: each event is a StreamEvent`)
    t.ok(ok.headers['X-Accel-Buffering'], `${path}: the stream's headers are declared`)
  }
})
