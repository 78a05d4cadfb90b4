import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'

/**
 * Per-IP limits, off unless a route asks for one (`config.rateLimit`): only the auth routes do.
 * RATE_LIMIT_ENABLED=false turns them all off for load tests. With REDIS_URL the counts live in
 * Redis, shared by every instance and kept across restarts; without it, in each process's memory.
 */
export default fp(async function rateLimitPlugin (fastify) {
  const { RATE_LIMIT_ENABLED, REDIS_URL } = fastify.config
  if (!RATE_LIMIT_ENABLED) return
  await fastify.register(rateLimit, {
    global: false,
    ...(REDIS_URL && { redis: sharedCounts(fastify, REDIS_URL), nameSpace: 'rate-limit:', skipOnError: true }),
    errorResponseBuilder: (_request, context) => {
      const error = new Error(`Too many requests, retry in ${Math.ceil(context.ttl / 1000)} seconds`) as Error & { statusCode: number }
      error.statusCode = context.statusCode
      return error
    }
  })
}, { name: 'rate-limit', dependencies: ['env'] })

/**
 * The Redis client of the shared counts. While Redis cannot be reached, a count fails at once (no
 * offline queue, one retry, a short command timeout) and the request goes on without a per-IP
 * limit (`skipOnError`): an outage of the limiter never refuses or stalls the API, and the
 * per-address login lockout (in MongoDB) still holds. The outage and the recovery are logged once each.
 */
function sharedCounts (fastify: FastifyInstance, url: string) {
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 1000 })
  let reachable = true
  redis.on('error', (error: Error) => {
    if (!reachable) return
    reachable = false
    fastify.log.warn({ err: { message: error.message } }, 'Redis unreachable: per-IP limits are not applied until it is back')
  })
  redis.on('ready', () => {
    if (reachable) return
    reachable = true
    fastify.log.info('Redis reachable again: per-IP limits are shared again')
  })
  fastify.addHook('onClose', async () => { redis.disconnect() })
  return redis
}
