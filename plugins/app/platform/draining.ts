import type { FastifyInstance } from 'fastify'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A liveness probe: it answers as long as the process runs, also while draining or under pressure. */
    liveness?: boolean
  }
}

/**
 * Once the server starts closing, every new request (readiness included) gets the usual 503
 * problem+json with Retry-After and `Connection: close`, before any handler runs; liveness routes
 * still answer. Fastify's own return503OnClosing answer is not problem+json, so it is turned off.
 *
 * Call it before our plugins are registered: preClose hooks run in order, and this flag must be up
 * while their hooks (ending streams, stopping the outbox) take their time.
 */
export function registerDraining (fastify: FastifyInstance) {
  let draining = false
  fastify.addHook('preClose', async () => { draining = true })
  fastify.addHook('onRequest', (request, _reply, done) => {
    if (!draining || request.routeOptions.config?.liveness) return done()
    done(Object.assign(new Error('server is shutting down'), { statusCode: 503, headers: { connection: 'close' } }))
  })
}
