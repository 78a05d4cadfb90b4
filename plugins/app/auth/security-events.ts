import type { FastifyBaseLogger } from 'fastify'
import { ObjectId, type Collection } from 'mongodb'
import { findOwned } from '../../../lib/by-id.js'
import { isDuplicateKey } from '../../../lib/database-errors.js'
import { parseObjectId } from '../../../lib/object-id.js'
import type { SecurityEvent, SecurityEventKind, SecurityEventPage } from '../../../schemas/users.js'
import { repositoryPlugin } from '../platform/repository-plugin.js'
import { LOGIN_FAILURE_WINDOW_MS } from './login-throttle.js'

/** What an event may say beside its kind and time (as the timeline shows it); each kind stores only the fields it has. Never a secret. */
export type EventFields = Omit<SecurityEvent, 'id' | 'kind' | 'at' | 'last_at'>

export interface SecurityEventDocument extends EventFields {
  _id: ObjectId
  user_id: ObjectId
  kind: SecurityEventKind
  at: Date
  /** Grouped events (failed sign-ins, lockouts): the last occurrence, counted in `count`. */
  last_at?: Date
  /** Grouped events: their unique key (user, kind, scope, window), so each group is one document. */
  group?: string
}

/** Where a request came from, as an event shows it. */
export function originOf (request: { ip: string, headers: Record<string, string | string[] | undefined> }) {
  const agent = request.headers['user-agent']
  return { ip: request.ip, user_agent: typeof agent === 'string' ? agent.slice(0, 512) : null }
}

const PRUNE_INTERVAL_MS = 60 * 60_000

function toEvent (doc: SecurityEventDocument): SecurityEvent {
  const { _id, kind, at, last_at: last, ip, user_agent: userAgent, session_id: sessionId, count, reason, event_id: eventId } = doc
  return {
    id: _id.toHexString(),
    kind,
    at: at.toISOString(),
    ...(last ? { last_at: last.toISOString() } : {}),
    ...(ip !== undefined ? { ip } : {}),
    ...(userAgent !== undefined ? { user_agent: userAgent } : {}),
    ...(sessionId !== undefined ? { session_id: sessionId } : {}),
    ...(count !== undefined ? { count } : {}),
    ...(reason !== undefined ? { reason } : {}),
    ...(eventId !== undefined ? { event_id: eventId } : {})
  }
}

/**
 * The account owner's security timeline: one document per event, newest first by `_id`. Failed
 * sign-ins and lockouts are grouped per address, IP and lockout window into one document whose
 * `count` grows. Kept `retentionDays`; a periodic job deletes older ones (FerretDB has no TTL).
 */
export function createSecurityEvents (events: Collection<SecurityEventDocument>, retentionDays: number, log: FastifyBaseLogger) {
  /** Writes left running by `recordLater`, awaited before the database closes. */
  const pending = new Set<Promise<void>>()

  async function record (userId: ObjectId, kind: SecurityEventKind, fields: EventFields = {}): Promise<ObjectId> {
    const { insertedId } = await events.insertOne({ user_id: userId, kind, at: new Date(), ...fields } as SecurityEventDocument)
    return insertedId
  }

  /** Counts one more occurrence of a grouped event; the unique `group` key makes racing first ones one document. */
  async function count (userId: ObjectId, kind: SecurityEventKind, scope: string, fields: EventFields) {
    const now = new Date()
    const group = `${kind}:${userId.toHexString()}:${scope}:${Math.floor(now.getTime() / LOGIN_FAILURE_WINDOW_MS)}`
    const update = () => events.updateOne({ group }, {
      $inc: { count: 1 },
      $set: { last_at: now },
      // The id made here, like every other event's: ids from one process are in order, while the
      // server's own are ordered against them only to the second.
      $setOnInsert: { _id: new ObjectId(), user_id: userId, kind, at: now, ...fields }
    }, { upsert: true })
    try {
      await update()
    } catch (error) {
      if (!isDuplicateKey(error)) throw error
      await update() // a racing first occurrence inserted it: now it matches
    }
  }

  return {
    async ensureIndexes () {
      await events.createIndex({ user_id: 1, _id: -1 }, { name: 'user_events' })
      await events.createIndex({ group: 1 }, { unique: true, sparse: true, name: 'group_unique' })
    },

    record,

    /**
     * Records a grouped event (`scope`: what it is counted per, e.g. the IP) in the background: for
     * refusals, whose answer must take the same time whether or not the address has an account.
     */
    countLater (userId: ObjectId, kind: 'sign_in_failed' | 'locked_out', scope: string, fields: EventFields) {
      const write = count(userId, kind, scope, fields)
        .catch((error: Error) => { log.warn({ user_id: userId.toHexString(), kind, err: { message: error.message } }, 'security event not recorded') })
        .finally(() => pending.delete(write))
      pending.add(write)
    },

    /** Waits for the background writes (app close, and tests reading the timeline after a refusal). */
    async settled () {
      await Promise.allSettled([...pending])
    },

    /** Removes one event (a login that turned out not to hold its session). */
    async remove (id: ObjectId) {
      await events.deleteOne({ _id: id })
    },

    /** The user's events, newest first, just before the event `before` (its id), at most `limit`. */
    async page (userId: string, before: string | undefined, limit: number): Promise<SecurityEventPage> {
      const anchor = parseObjectId(before)
      const filter = { user_id: new ObjectId(userId), ...(anchor ? { _id: { $lt: anchor } } : {}) }
      const docs = await events.find(filter, { projection: { group: 0, user_id: 0 } }).sort({ _id: -1 }).limit(limit + 1).toArray()
      const page = docs.slice(0, limit)
      return { events: page.map(toEvent), next_before: docs.length > limit ? page[page.length - 1]!._id.toHexString() : null }
    },

    /** One of the user's events; null for another user's, an unknown or a malformed id. */
    async findOwned (userId: string, id: string): Promise<SecurityEvent | null> {
      const _id = parseObjectId(id)
      if (!_id) return null
      const doc = await findOwned(events, _id, new ObjectId(userId))
      return doc ? toEvent(doc) : null
    },

    async deleteAllOf (userId: ObjectId) {
      await events.deleteMany({ user_id: userId })
    },

    /** Deletes events older than the retention; returns how many. */
    async prune () {
      const cutoff = ObjectId.createFromTime(Math.floor(Date.now() / 1000) - retentionDays * 86_400)
      const { deletedCount } = await events.deleteMany({ _id: { $lt: cutoff } })
      return deletedCount
    }
  }
}

export type SecurityEvents = ReturnType<typeof createSecurityEvents>

declare module 'fastify' {
  interface FastifyInstance {
    securityEvents: SecurityEvents
  }
}

export default repositoryPlugin('securityEvents', (db, fastify) => {
  const events = createSecurityEvents(db.collection<SecurityEventDocument>('security_events'), fastify.config.SECURITY_EVENTS_DAYS, fastify.log)
  fastify.periodicJobs.add('security events pruning', {
    everyMs: PRUNE_INTERVAL_MS,
    async task () {
      const pruned = await events.prune()
      if (pruned > 0) fastify.log.info({ pruned }, 'security events past their retention deleted')
    }
  })
  // onClose hooks run in reverse order: this one before the database client closes.
  fastify.addHook('onClose', async () => { await events.settled() })
  return events
}, ['env', 'periodic-jobs'])
