import t from 'tap'
import { build } from '../helper.js'

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
