import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { withTimeout } from '../../lib/with-timeout.js'
import { noSecurity } from '../../plugins/external/swagger.js'
import { problemResponses, ref, success } from '../../schemas/common.js'
import { HealthSchema } from '../../schemas/health.js'

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  const alive = success(ref(HealthSchema), 'The process answers')
  // Both are liveness probes (/health is the original's): never the database, never turned away
  // while draining or under pressure, so an orchestrator does not restart a busy or stopping process.
  fastify.get('/', {
    config: { withoutDatabase: true, liveness: true },
    schema: {
      tags: ['Health'],
      security: noSecurity,
      summary: 'Liveness: the process answers (the database is not touched)',
      operationId: 'health',
      response: { 200: alive, 500: problemResponses()[500] }
    }
  }, async () => ({ status: 'ok' }))

  fastify.get('/live', {
    config: { withoutDatabase: true, liveness: true },
    schema: {
      tags: ['Health'],
      security: noSecurity,
      summary: 'Liveness: the process answers, also while draining or under load (the database is not touched)',
      operationId: 'live',
      response: { 200: alive, 500: problemResponses()[500] }
    }
  }, async () => ({ status: 'ok' }))

  fastify.get('/ready', {
    config: { withoutDatabase: true },
    schema: {
      tags: ['Health'],
      security: noSecurity,
      summary: 'Readiness: the database is set up and answers a ping within 1 s; 503 once the server is shutting down',
      operationId: 'ready',
      response: { 200: success(ref(HealthSchema), 'The database answers'), ...problemResponses(503) }
    }
  }, async (request) => {
    try {
      if (!fastify.databaseSetup.done) throw new Error('database setup not done')
      await withTimeout(fastify.mongo.db!.command({ ping: 1 }), 1000)
    } catch (error) {
      request.log.warn({ err: { message: (error as Error).message } }, 'database ping failed')
      throw fastify.httpErrors.serviceUnavailable('Database unavailable')
    }
    return { status: 'ok' }
  })
}

export default health
