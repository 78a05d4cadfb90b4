import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'

/**
 * Per-IP limits, off unless a route asks for one (`config.rateLimit`): only the auth routes do.
 * RATE_LIMIT_ENABLED=false turns them all off for load tests.
 */
export default fp(async function rateLimitPlugin (fastify) {
  if (!fastify.config.RATE_LIMIT_ENABLED) return
  await fastify.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) => {
      const error = new Error(`Too many requests, retry in ${Math.ceil(context.ttl / 1000)} seconds`) as Error & { statusCode: number }
      error.statusCode = context.statusCode
      return error
    }
  })
}, { name: 'rate-limit', dependencies: ['env'] })
