import fp from 'fastify-plugin'
import { ShuttingDownError } from './errors.js'

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
 * preClose hooks run in registration order, and this flag must be up while the other plugins' hooks
 * (ending streams, stopping the outbox) take their time: database-setup, which every plugin that
 * uses the database depends on, depends on this one.
 */
export default fp(async function draining (fastify) {
  let draining = false
  fastify.addHook('preClose', async () => { draining = true })
  fastify.addHook('onRequest', (request, _reply, done) => {
    if (!draining || request.routeOptions.config?.liveness) return done()
    done(new ShuttingDownError())
  })
}, { name: 'draining' })
