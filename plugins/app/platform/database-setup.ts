import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import { DatabaseNotReadyError } from './errors.js'

export interface DatabaseSetup {
  /** Adds a step (index creation...) to run once the database answers. */
  add (name: string, step: (signal: AbortSignal) => Promise<void>): void
  /** True once every step has succeeded. */
  readonly done: boolean
  /** Resolves when every step has succeeded (tests, and server start when waiting is wanted). */
  whenDone (): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    databaseSetup: DatabaseSetup
  }
}

const RETRY_MS = 1000

/**
 * The service starts (and /health answers) while the database is away. Setup steps run in the
 * background once the app is ready, retried until they succeed; until then, requests that would use
 * the database answer 503, so nothing is written before the unique indexes exist.
 */
export default fp(async function databaseSetup (fastify) {
  const steps: Array<{ name: string, step: (signal: AbortSignal) => Promise<void> }> = []
  let done = false
  const closing = new AbortController()
  let resolveDone: () => void
  const finished = new Promise<void>((resolve) => { resolveDone = resolve })

  // A client whose first connection failed stays closed, so connecting is the first step, retried too.
  const connect = { name: 'connect', step: async () => { await fastify.mongo.client.connect() } }
  // Retryable writes need a replica set (one node is enough); a standalone server works, with a warning.
  const topology = {
    name: 'topology',
    step: async () => {
      if (fastify.config.NODE_ENV !== 'production') return
      const hello = await fastify.mongo.db!.admin().command({ hello: 1 })
      if (!hello.setName && hello.msg !== 'isdbgrid') {
        fastify.log.warn('MongoDB is not a replica set: writes are not retried across a failover; run it as a replica set (one node is enough)')
      }
    }
  }

  async function runAll () {
    for (const { name, step } of [connect, topology, ...steps]) {
      while (!closing.signal.aborted) {
        try {
          await step(closing.signal)
          break
        } catch (error) {
          fastify.log.warn({ step: name, err: { message: (error as Error).message } }, 'database setup waiting for the database')
          await sleep(RETRY_MS, undefined, { signal: closing.signal }).catch(() => {})
        }
      }
    }
    if (closing.signal.aborted) return
    done = true
    resolveDone()
    fastify.log.info('database setup done')
  }

  fastify.decorate('databaseSetup', {
    add (name, step) { steps.push({ name, step }) },
    get done () { return done },
    whenDone: () => finished
  } satisfies DatabaseSetup)

  fastify.addHook('onReady', async () => {
    runAll().catch((error: Error) => fastify.log.error({ err: error }, 'database setup failed'))
  })
  fastify.addHook('preClose', async () => { closing.abort() })

  fastify.addHook('onRequest', (request, _reply, next) => {
    if (done || request.routeOptions.config?.withoutDatabase) return next()
    next(new DatabaseNotReadyError())
  })
}, { name: 'database-setup', dependencies: ['env', 'mongodb', 'draining'] })

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route works without the database (health, docs): not held back by database setup. */
    withoutDatabase?: boolean
  }
}
