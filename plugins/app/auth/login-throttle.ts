import { randomInt } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Collection, ObjectId } from 'mongodb'
import { isDuplicateKey } from '../../../lib/database-errors.js'
import { TooManyFailuresError } from './errors.js'
import { repositoryPlugin } from '../platform/repository-plugin.js'

/** One password check that may still fail: a slot of its address's (and IP's) limit, held for the window. */
interface AttemptDocument {
  /** `{window}:{slot}:{scope}`: the unique key that makes a slot go to exactly one attempt. */
  _id: string
  scope: string
  window: number
  email: string
  expires_at: Date
}

export const LOGIN_FAILURE_WINDOW_MS = 15 * 60_000
export const ACCOUNT_FAILURE_WINDOW_MS = 60 * 60_000
const PRUNE_INTERVAL_MS = 10 * 60_000

interface Limit {
  scope: string
  max: number
  windowMs: number
}

/** A password check allowed to run; it holds its slots until it is told how it ended. */
export interface Attempt {
  /** The password was right: this address+IP starts afresh, and the check no longer counts. */
  succeeded (): Promise<void>
  /** The check never ran (the hasher was busy, an error): it does not count. */
  abandon (): Promise<void>
}

/**
 * Failed password checks, per address and client IP (`maxFailures` per 15 minutes) and per address
 * across all IPs (`maxPerAccount` per hour), in fixed windows stored in the database so every
 * instance sees them. A check first claims a free slot 1..max of each window, by inserting its
 * unique key, before any hash runs: parallel attempts cannot all be checked, on MongoDB and on
 * FerretDB 1.x alike (whose filtered updates are not isolated, so no counter is incremented). A
 * failure keeps its slots until the window ends. Unknown addresses are counted like real ones.
 */
export function createLoginThrottle (attempts: Collection<AttemptDocument>, maxFailures: number, maxPerAccount: number) {
  /** A free slot of the current window of `limit`, claimed; else the seconds until the window ends. */
  async function claim (email: string, { scope, max, windowMs }: Limit): Promise<{ key: string } | { wait: number }> {
    const now = Date.now()
    const window = Math.floor(now / windowMs)
    const end = (window + 1) * windowMs
    const taken = new Set((await attempts.find({ scope, window }, { projection: { _id: 1 } }).toArray()).map((a) => a._id))
    const free = []
    for (let slot = 1; slot <= max; slot++) {
      const key = `${window}:${slot}:${scope}`
      if (!taken.has(key)) free.push(key)
    }
    // Parallel attempts read the same free slots: each starts at a random one, so few collide.
    const start = free.length > 0 ? randomInt(free.length) : 0
    for (let i = 0; i < free.length; i++) {
      const key = free[(start + i) % free.length]!
      try {
        await attempts.insertOne({ _id: key, scope, window, email, expires_at: new Date(end) })
        return { key }
      } catch (error) {
        if (!isDuplicateKey(error)) throw error
      }
    }
    return { wait: Math.max(1, Math.ceil((end - Date.now()) / 1000)) }
  }

  function blocked (wait: number, scope: TooManyFailuresError['scope'], log: FastifyBaseLogger, userId: ObjectId | undefined): never {
    log.warn({ user_id: userId?.toHexString() }, 'password check blocked: too many failures')
    throw new TooManyFailuresError(wait, scope)
  }

  return {
    async ensureIndexes () {
      await attempts.createIndex({ scope: 1, window: 1 }, { name: 'scope_window' })
      await attempts.createIndex({ email: 1 }, { name: 'email' })
      await attempts.createIndex({ expires_at: 1 }, { name: 'expiry' })
    },

    /**
     * Claims the check's place under both limits, or throws (and logs) the 429: login, password
     * change and account deletion, before the password is hashed.
     */
    async begin (email: string, ip: string, log: FastifyBaseLogger, userId: ObjectId | undefined): Promise<Attempt> {
      const perIp = `ip|${ip}|${email}`
      const fromIp = await claim(email, { scope: perIp, max: maxFailures, windowMs: LOGIN_FAILURE_WINDOW_MS })
      if ('wait' in fromIp) blocked(fromIp.wait, 'address_and_ip', log, userId)
      const overall = await claim(email, { scope: `account|${email}`, max: maxPerAccount, windowMs: ACCOUNT_FAILURE_WINDOW_MS })
      if ('wait' in overall) {
        await attempts.deleteOne({ _id: fromIp.key })
        blocked(overall.wait, 'address', log, userId)
      }
      return {
        async succeeded () {
          await attempts.deleteMany({ $or: [{ scope: perIp }, { _id: overall.key }] })
        },
        async abandon () {
          await attempts.deleteMany({ _id: { $in: [fromIp.key, overall.key] } })
        }
      }
    },

    /** Every counter of the address ends (a completed reset, a deleted account). */
    async clear (email: string) {
      await attempts.deleteMany({ email })
    },

    /** Deletes the slots of windows that have passed; returns how many. */
    async prune () {
      const { deletedCount } = await attempts.deleteMany({ expires_at: { $lte: new Date() } })
      return deletedCount
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    loginThrottle: ReturnType<typeof createLoginThrottle>
  }
}

export default repositoryPlugin('loginThrottle', (db, fastify) => {
  const { LOGIN_MAX_FAILURES, LOGIN_MAX_FAILURES_PER_ACCOUNT } = fastify.config
  const throttle = createLoginThrottle(db.collection<AttemptDocument>('login_attempts'), LOGIN_MAX_FAILURES, LOGIN_MAX_FAILURES_PER_ACCOUNT)
  fastify.periodicJobs.add('login attempts pruning', { everyMs: PRUNE_INTERVAL_MS, task: async () => { await throttle.prune() } })
  return throttle
}, ['env', 'periodic-jobs'])
