import fp from 'fastify-plugin'

export interface PeriodicJob {
  /** Runs the job now, or once more right after the run in progress; resolves when that run ends. */
  run (): Promise<void>
}

export interface PeriodicJobOptions {
  everyMs: number
  /** Its signal aborts when the app closes. A failure is logged as `<name> failed`; the next tick tries again. */
  task (signal: AbortSignal): Promise<void>
  /** The job needs no database, so it runs before database setup is done (default: it waits). */
  withoutDatabase?: boolean
}

export interface PeriodicJobs {
  add (name: string, options: PeriodicJobOptions): PeriodicJob
}

declare module 'fastify' {
  interface FastifyInstance {
    periodicJobs: PeriodicJobs
  }
}

/**
 * Every background job of the service (heartbeat, sweeps, checkpoints, the mail outbox poll, stream
 * pings) runs through here: ticks start when the app is ready, a run never overlaps the previous
 * one, jobs that use the database wait for its setup, and closing stops the ticks and waits for the
 * run in progress before the database client closes.
 */
export default fp(async function periodicJobs (fastify) {
  const { databaseSetup, log } = fastify
  const closing = new AbortController()
  fastify.addHook('preClose', async () => { closing.abort() })

  fastify.decorate('periodicJobs', {
    add (name, { everyMs, task, withoutDatabase = false }) {
      let running: Promise<void> | undefined
      let next: Promise<void> | undefined
      const canRun = () => !closing.signal.aborted && (withoutDatabase || databaseSetup.done)

      async function execute () {
        try {
          await task(closing.signal)
        } catch (error) {
          log.warn({ job: name, err: { message: (error as Error).message } }, `${name} failed`)
        }
      }

      function run (): Promise<void> {
        if (!canRun()) return Promise.resolve()
        if (!running) {
          running = execute().finally(() => { running = undefined })
          return running
        }
        next ??= running.then(() => {
          next = undefined
          return run()
        })
        return next
      }

      let timer: NodeJS.Timeout | undefined
      fastify.addHook('onReady', async () => {
        timer = setInterval(() => { if (!running) run().catch(() => {}) }, everyMs)
        timer.unref()
      })
      fastify.addHook('preClose', async () => {
        clearInterval(timer)
        await next
        await running
      })
      return { run }
    }
  } satisfies PeriodicJobs)
}, { name: 'periodic-jobs', dependencies: ['database-setup'] })
