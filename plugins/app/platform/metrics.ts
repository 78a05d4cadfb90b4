import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's Prometheus registry: each domain adds its own metrics (streams, outbox, hashing). */
    metrics: Registry
    /** The port of the separate metrics server (METRICS_PORT), once listening. */
    metricsPort?: number
  }
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * `GET /metrics` in the Prometheus text format, when METRICS_ENABLED: requests by route pattern,
 * method and status with their latency, the process's own (event-loop delay, heap, CPU), and what
 * the domains add. On METRICS_PORT it is served by a server of its own, so it need not be public.
 * The registry is the app's, not prom-client's global one: several apps can run in one process.
 */
export default fp(async function metrics (fastify) {
  const { METRICS_ENABLED, METRICS_PORT, HOST } = fastify.config
  const registry = new Registry()
  fastify.decorate('metrics', registry)
  if (!METRICS_ENABLED) return

  collectDefaultMetrics({ register: registry })
  // Gauges named like counters, which promtool's lint refuses; the same counts stand by type without `_total`.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name)
  const requests = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests by route pattern, method and status, with their duration (a stream: until its reply is stored)',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry]
  })
  fastify.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched'
    if (route !== '/metrics') requests.observe({ method: request.method, route, status: reply.statusCode }, reply.elapsedTime / 1000)
    done()
  })

  const scrape = async () => ({ type: registry.contentType, body: await registry.metrics() })
  if (METRICS_PORT === undefined) {
    fastify.get('/metrics', { schema: { hide: true }, config: { withoutDatabase: true, liveness: true } }, async (_request, reply) => {
      const { type, body } = await scrape()
      return reply.type(type).send(body)
    })
    return
  }
  let server: Server | undefined
  fastify.addHook('onReady', async () => {
    server = createServer((request, response) => {
      if (request.url !== '/metrics') return response.writeHead(404).end()
      scrape().then(({ type, body }) => response.writeHead(200, { 'content-type': type }).end(body), () => response.writeHead(500).end())
    })
    await new Promise<void>((resolve, reject) => server!.once('error', reject).listen(METRICS_PORT, HOST, resolve))
    fastify.metricsPort = (server.address() as AddressInfo).port
  })
  fastify.addHook('onClose', async () => { await new Promise((resolve) => server ? server.close(resolve) : resolve(undefined)) })
}, { name: 'metrics', dependencies: ['env'] })
