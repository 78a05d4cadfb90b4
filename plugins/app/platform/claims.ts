import type { Collection } from 'mongodb'
import { isDuplicateKey } from '../../../lib/database-errors.js'
import { findByIds } from '../../../lib/by-id.js'
import { repositoryPlugin } from './repository-plugin.js'

interface ClaimDocument {
  _id: string
  /** What the claim was made for (e.g. the session of a rotated refresh token). */
  owner?: string
  /** Stream slots: the instance and session of the stream holding it. */
  instance?: string
  session?: string
  created_at: Date
  expires_at: Date
}

const SWEEP_INTERVAL_MS = 10 * 60_000

/**
 * Exactly-once decisions ("this token is consumed", "this address got its mail"): an insert under a
 * unique key has exactly one winner, on MongoDB and on FerretDB 1.x alike. A filtered update is not
 * enough there: FerretDB 1.x applies concurrent filtered updates of one document without isolation,
 * so several callers can all "win" the same `{ state: 'active' }` match.
 */
export type ClaimDetails = Pick<ClaimDocument, 'instance' | 'session'>

export function createClaims (claims: Collection<ClaimDocument>) {
  async function tryClaim (key: string, expiresAt: Date, owner?: string, details: ClaimDetails = {}): Promise<boolean> {
    try {
      await claims.insertOne({ _id: key, created_at: new Date(), expires_at: expiresAt, ...(owner === undefined ? {} : { owner }), ...details })
      return true
    } catch (error) {
      if (isDuplicateKey(error)) return false
      throw error
    }
  }

  return {
    async ensureIndexes () {
      try {
        await claims.createIndex({ expires_at: 1 }, { name: 'expiry', expireAfterSeconds: 0 })
      } catch {
        // FerretDB 1.x has no TTL indexes; the sweep below removes expired claims instead.
        await claims.createIndex({ expires_at: 1 }, { name: 'expiry_plain' })
      }
    },

    tryClaim,

    /** The live claim on `key`, if any. (Looked up by `_id` alone: see lib/by-id.ts.) */
    async find (key: string) {
      const claim = await claims.findOne({ _id: key })
      return claim && claim.expires_at > new Date() ? claim : null
    },

    /** The claims on these keys, expired ones included. */
    async findAll (keys: string[]) {
      return await findByIds(claims, keys)
    },

    async isClaimed (key: string): Promise<boolean> {
      const claim = await claims.findOne({ _id: key }, { projection: { expires_at: 1 } })
      return claim !== null && claim.expires_at > new Date()
    },

    /** Claims `key` if it is free or its previous claim has expired (a window that has passed). */
    async tryClaimWindow (key: string, expiresAt: Date, owner?: string, details?: ClaimDetails): Promise<boolean> {
      if (await tryClaim(key, expiresAt, owner, details)) return true
      const { deletedCount } = await claims.deleteOne({ _id: key, expires_at: { $lte: new Date() } })
      return deletedCount > 0 && await tryClaim(key, expiresAt, owner, details)
    },

    /** Gives up `key` if `owner` still holds it; true when this call removed it. */
    async release (key: string, owner: string): Promise<boolean> {
      const { deletedCount } = await claims.deleteOne({ _id: key, owner })
      return deletedCount > 0
    },

    /** Replaces any claim on `key` with a new one (a window that starts now, whatever came before). */
    async forceClaim (key: string, expiresAt: Date) {
      await claims.deleteOne({ _id: key })
      await tryClaim(key, expiresAt)
    },

    async sweep () {
      await claims.deleteMany({ expires_at: { $lte: new Date() } })
    }
  }
}

export type Claims = ReturnType<typeof createClaims>

declare module 'fastify' {
  interface FastifyInstance {
    claims: Claims
  }
}

export default repositoryPlugin('claims', (db, fastify) => {
  const claims = createClaims(db.collection<ClaimDocument>('claims'))
  fastify.periodicJobs.add('claims sweep', { everyMs: SWEEP_INTERVAL_MS, task: () => claims.sweep() })
  return claims
}, ['periodic-jobs'])
