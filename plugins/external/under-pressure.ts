import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'

/**
 * Load shedding: past the PRESSURE_* limits (event-loop delay, heap, RSS; sampled every second)
 * requests get the usual 503 problem+json with Retry-After from the error handler. Liveness routes
 * still answer. The plugin's own status route stays off: /health is ours.
 */
export default fp(async function underPressurePlugin (fastify) {
  const { config } = fastify
  await fastify.register(underPressure, {
    maxEventLoopDelay: config.PRESSURE_MAX_EVENT_LOOP_DELAY_MS,
    maxHeapUsedBytes: config.PRESSURE_MAX_HEAP_BYTES,
    maxRssBytes: config.PRESSURE_MAX_RSS_BYTES,
    exposeStatusRoute: false,
    pressureHandler: async (request, _reply, type, value) => {
      if (request.routeOptions.config?.liveness) return
      throw fastify.httpErrors.serviceUnavailable(`under pressure: ${type} ${Math.round(value ?? 0)}`)
    }
  })
}, { name: 'under-pressure', dependencies: ['env', 'sensible'] })
