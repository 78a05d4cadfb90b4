import type { FastifyBaseLogger } from 'fastify'
import type { Collection, ObjectId } from 'mongodb'
import { TooManyFailuresError } from './errors.js'
import { repositoryPlugin } from '../platform/repository-plugin.js'

interface FailureDocument {
  _id: ObjectId
  email: string
  at: Date
}

export const LOGIN_FAILURE_WINDOW_MS = 15 * 60_000

/**
 * Failed password checks per address, in the database so every instance (and a restart) sees them.
 * Each failure is its own document: inserts cannot lose a count the way concurrent increments can.
 * Unknown addresses are counted exactly like real ones, so a 429 reveals nothing.
 */
export function createLoginThrottle (failures: Collection<FailureDocument>, maxFailures: number) {
  const windowStart = () => new Date(Date.now() - LOGIN_FAILURE_WINDOW_MS)
  async function retryAfter (email: string): Promise<number> {
    const recent = { email, at: { $gt: windowStart() } }
    const count = await failures.countDocuments(recent)
    if (count < maxFailures) return 0
    // Blocked until enough failures leave the window to drop below the limit.
    const [unblocking] = await failures.find(recent, { projection: { at: 1 } }).sort({ at: 1 }).skip(count - maxFailures).limit(1).toArray()
    const until = (unblocking?.at.getTime() ?? Date.now()) + LOGIN_FAILURE_WINDOW_MS
    return Math.max(1, Math.ceil((until - Date.now()) / 1000))
  }

  return {
    async ensureIndexes () {
      await failures.createIndex({ email: 1, at: 1 }, { name: 'email_at' })
    },

    /** Throws (and logs) the 429 while the address is blocked (login, password change, account deletion). */
    async assertAllowed (email: string, log: FastifyBaseLogger, userId: ObjectId | undefined) {
      const wait = await retryAfter(email)
      if (wait === 0) return
      log.warn({ user_id: userId?.toHexString() }, 'password check blocked: too many failures')
      throw new TooManyFailuresError(wait)
    },

    async recordFailure (email: string) {
      await failures.insertOne({ email, at: new Date() } as FailureDocument)
      // Old failures no longer count; dropping them keeps the collection small without a TTL index.
      await failures.deleteMany({ email, at: { $lte: windowStart() } })
    },

    async reset (email: string) {
      await failures.deleteMany({ email })
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    loginThrottle: ReturnType<typeof createLoginThrottle>
  }
}

export default repositoryPlugin('loginThrottle', (db, fastify) =>
  createLoginThrottle(db.collection<FailureDocument>('login_failures'), fastify.config.LOGIN_MAX_FAILURES), ['env'])
