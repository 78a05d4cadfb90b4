/** Per-IP limits shared through Redis (REDIS_URL) by several instances, and what a Redis outage does. */
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { build, type TestApp } from '../support/app.js'
import { startRedis } from '../support/redis.js'
import { until } from '../support/until.js'

/** forgot-password answers the same 200 to anyone, and allows 5 a minute per IP: `count` of them, round robin over `apps`. */
async function forgotPasswords (apps: TestApp[], count: number) {
  const statuses: number[] = []
  for (let i = 0; i < count; i++) {
    const res = await apps[i % apps.length]!.inject({ method: 'POST', url: '/auth/forgot-password', payload: { email: `someone${i}@example.com` } })
    statuses.push(res.statusCode)
  }
  return statuses
}

/** Three instances on one database, limits on, with `env` over that. */
async function threeInstances (t: Test, env: Record<string, string>) {
  const shared = { RATE_LIMIT_ENABLED: 'true', DATABASE_NAME: `test_${randomBytes(6).toString('hex')}`, ...env }
  return await Promise.all([build(t, shared), build(t, shared), build(t, shared)])
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length

t.test('with REDIS_URL, three instances together allow exactly the per-IP rate', async (t) => {
  const redis = await startRedis(t)
  const apps = await threeInstances(t, { REDIS_URL: redis.url })
  const statuses = await forgotPasswords(apps, 12)
  t.equal(count(statuses, 200), 5, 'five answered, as one instance would allow')
  t.equal(count(statuses, 429), 7, `the other seven refused: ${statuses.join(',')}`)
})

t.test('without REDIS_URL, each instance counts alone', async (t) => {
  const apps = await threeInstances(t, {})
  t.same(await forgotPasswords(apps, 12), Array(12).fill(200), 'four per instance, under each one\'s own limit')
})

t.test('while Redis is down, requests are not refused for it, and the outage is logged once', async (t) => {
  const redis = await startRedis(t)
  const apps = await threeInstances(t, { REDIS_URL: redis.url })
  t.equal(count(await forgotPasswords(apps, 3), 200), 3, 'counted in Redis meanwhile')
  await redis.stop()
  await until(() => apps.every((app) => app.logs.lines.some((line) => line.msg === 'Redis unreachable: per-IP limits are not applied until it is back')), 10_000, 'each instance to notice')

  const during = await forgotPasswords(apps, 12)
  t.same(during, Array(12).fill(200), 'no request refused or failed because of Redis')
  for (const [i, app] of apps.entries()) {
    t.equal(app.logs.lines.filter((line) => line.msg === 'Redis unreachable: per-IP limits are not applied until it is back').length, 1, `instance ${i}: logged once, not per request`)
  }
})
