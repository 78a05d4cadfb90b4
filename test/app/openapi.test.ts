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
  t.notOk(doc.paths['/auth/register'].post.security, 'public routes need no token')
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
