import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { Collection } from 'mongodb'
import { findByIds } from '../../../../lib/by-id.js'

interface InstanceDocument {
  _id: string
  started_at: Date
  heartbeat_at: Date
}

export interface Instance {
  /** This process's id, named by the replies it streams and the stream slots it holds. */
  readonly id: string
  /** Those of these instances whose heartbeat is fresh (this one always is, to itself). */
  alive (ids: string[]): Promise<Set<string>>
  /** Other instances whose heartbeat stopped: whatever they were streaming died with them. */
  stale (): Promise<string[]>
  /** Removes a stale instance's record once its replies are ended. */
  forget (id: string): Promise<void>
  /** Runs `task` after each heartbeat (once a second) while the database is set up. */
  onBeat (task: () => Promise<void>): void
}

declare module 'fastify' {
  interface FastifyInstance {
    instance: Instance
  }
}

const BEAT_INTERVAL_MS = 1000

/**
 * One heartbeat document per instance, written once a second whatever the number of streams:
 * a reply names the instance writing it, so a reply is alive exactly while its instance beats.
 * An instance silent for REPLY_STALE_SECONDS has stopped (kill -9, crash, power loss).
 */
export default fp(async function instance (fastify) {
  const { databaseSetup, log } = fastify
  const instances: Collection<InstanceDocument> = fastify.mongo.db!.collection('instances')
  const id = randomBytes(12).toString('hex')
  const staleMs = fastify.config.REPLY_STALE_SECONDS * 1000
  const startedAt = new Date()
  const tasks: Array<() => Promise<void>> = []
  const isFresh = (doc: InstanceDocument) => Date.now() - doc.heartbeat_at.getTime() < staleMs

  const beat = async () => {
    await instances.updateOne({ _id: id }, { $set: { heartbeat_at: new Date() }, $setOnInsert: { started_at: startedAt } }, { upsert: true })
  }
  // Before the service is ready, so no reply names an instance that never beat.
  databaseSetup.add('instance heartbeat', beat)

  fastify.periodicJobs.add('instance heartbeat', {
    everyMs: BEAT_INTERVAL_MS,
    async task () {
      const failure = await beat().then(() => null, (error: Error) => error)
      // The tasks run whether or not this beat landed.
      await Promise.all(tasks.map((task) => task().catch((error: Error) => log.warn({ err: { message: error.message } }, 'heartbeat task failed'))))
      if (failure) throw failure
    }
  })

  fastify.decorate('instance', {
    id,
    // This instance's own heartbeat may lag while the database is slow: it knows it is alive.
    async alive (ids) {
      const others = [...new Set(ids)].filter((other) => other !== id)
      const found = others.length > 0 ? await findByIds(instances, others) : []
      const fresh = new Set(found.filter(isFresh).map((doc) => doc._id))
      if (ids.includes(id)) fresh.add(id)
      return fresh
    },
    async stale () {
      // One document per running instance: a handful.
      return (await instances.find({}).toArray()).filter((doc) => doc._id !== id && !isFresh(doc)).map((doc) => doc._id)
    },
    async forget (staleId) {
      await instances.deleteOne({ _id: staleId, heartbeat_at: { $lt: new Date(Date.now() - staleMs) } })
    },
    onBeat (task) { tasks.push(task) }
  } satisfies Instance)
}, { name: 'instance', dependencies: ['env', 'mongodb', 'database-setup', 'periodic-jobs'] })
