import fp from 'fastify-plugin'
import type { ObjectId } from 'mongodb'

/** How often stopped instances are looked for; a shorter REPLY_STALE_SECONDS looks as often as that. */
const SWEEP_INTERVAL_MS = 30_000

/**
 * Ends the replies that a stopped process (kill -9, crash, power loss) left `streaming`. Each
 * sweep reads the instances' heartbeats (a handful of documents) and, for an instance silent for
 * REPLY_STALE_SECONDS, its replies (by an index on the instance they name): its cost follows the
 * number of instances, not the data. At startup, before the service is ready, one pass over every
 * `streaming` reply also ends those whose instance left no heartbeat at all.
 */
export default fp(async function replySweeper (fastify) {
  const staleMs = fastify.config.REPLY_STALE_SECONDS * 1000
  const { exchanges, instance, liveStreams, databaseSetup, log } = fastify

  const report = (swept: number) => { if (swept > 0) log.info({ swept }, 'stale streaming replies marked interrupted') }

  async function startupSweep (signal: AbortSignal) {
    const streaming = await exchanges.allStreaming()
    const alive = await instance.alive(streaming.flatMap((reply) => reply.instance ? [reply.instance] : []))
    const staleBefore = Date.now() - staleMs
    const orphans: ObjectId[] = streaming
      .filter((reply) => reply.instance ? !alive.has(reply.instance) : reply.updated_at.getTime() < staleBefore)
      .map((reply) => reply._id)
    report(await exchanges.interrupt(orphans, signal))
  }

  async function sweep (signal: AbortSignal) {
    let swept = 0
    for (const stopped of await instance.stale()) {
      if (signal.aborted) break
      swept += await exchanges.interrupt(await exchanges.streamingOf(stopped), signal)
      await liveStreams.dropSignalsOf(stopped)
      await instance.forget(stopped)
    }
    report(swept)
  }

  databaseSetup.add('stale replies sweep', startupSweep)
  fastify.periodicJobs.add('stale replies sweep', { everyMs: Math.min(SWEEP_INTERVAL_MS, staleMs), task: sweep })
}, { name: 'reply-sweeper', dependencies: ['env', 'exchanges', 'instance', 'live-streams', 'database-setup', 'periodic-jobs'] })
