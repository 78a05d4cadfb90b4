import fp from 'fastify-plugin'
import type { FastifyError, RouteHandlerMethod } from 'fastify'

/** What a request may spend past the database's own limit: hashing, serialising, a busy event loop. */
export const DEADLINE_MARGIN_MS = 1000

/**
 * A request that may use the database is answered within DATABASE_TIMEOUT_MS plus a margin: 503
 * past that, whatever the driver retries. Each wait of the driver is bounded (plugins/external/
 * mongodb.ts), but a retried read, or a handler's round trips one after another, add up.
 *
 * Fastify's `handlerTimeout` answers, through the error handler. A stream is past it once it has
 * taken over its reply. The handler goes on and its late outcome is dropped here, logged once,
 * rather than reaching Fastify as a second answer ("Reply was already sent").
 */
export default fp(async function requestDeadline (fastify) {
  const handlerTimeout = fastify.config.DATABASE_TIMEOUT_MS + DEADLINE_MARGIN_MS

  fastify.addHook('onRoute', (route) => {
    if (route.config?.withoutDatabase || route.handlerTimeout) return
    route.handlerTimeout = handlerTimeout
    const handler = route.handler as RouteHandlerMethod
    route.handler = async function (request, reply) {
      let outcome = 'answer'
      try {
        const result = await handler.call(this, request, reply)
        if (!timedOut(request.signal)) return result
      } catch (error) {
        if (!timedOut(request.signal)) throw error
        outcome = (error as Error).message
      }
      // Writes it made stand: the client was told 503, and retries as with any other 503.
      request.log.info({ outcome }, 'request finished after its time limit had answered 503')
    }
  })
}, { name: 'request-deadline', dependencies: ['env'] })

function timedOut (signal: AbortSignal) {
  return signal.aborted && (signal.reason as FastifyError | undefined)?.code === 'FST_ERR_HANDLER_TIMEOUT'
}
