import type { Collection, ObjectId } from 'mongodb'
import { hashToken, newSecretToken } from '../../../lib/secrets.js'
import type { Claims } from '../platform/claims.js'
import { repositoryPlugin } from '../platform/repository-plugin.js'

/** What a one-time link (its token, its mail) is for. */
export type LinkPurpose = 'verify-email' | 'reset-password'

interface OneTimeTokenDocument {
  _id: ObjectId
  token_hash: string
  purpose: LinkPurpose
  user_id: ObjectId
  /** active → used (consumed once) or void (replaced or killed before use). */
  state: 'active' | 'used' | 'void'
  created_at: Date
  expires_at: Date
  used_at: Date | null
}

/**
 * Mail-link tokens: bound to one purpose and one user, consumed once (a claim decides among
 * concurrent uses), with expiry enforced by the consuming query (no cleanup job is trusted with it).
 */
export function createOneTimeTokens (tokens: Collection<OneTimeTokenDocument>, claims: Claims) {
  return {
    async ensureIndexes () {
      await tokens.createIndex({ token_hash: 1 }, { unique: true, name: 'token_hash_unique' })
      await tokens.createIndex({ user_id: 1, purpose: 1, state: 1 }, { name: 'user_purpose' })
    },

    async issue (userId: ObjectId, purpose: LinkPurpose, lifetimeMs: number): Promise<string> {
      // Only the hash is stored, so a database leak yields no usable link.
      const token = newSecretToken()
      const hash = hashToken(token)
      const now = new Date()
      await tokens.insertOne({
        token_hash: hash,
        purpose,
        user_id: userId,
        state: 'active',
        created_at: now,
        expires_at: new Date(now.getTime() + lifetimeMs),
        used_at: null
      } as OneTimeTokenDocument)
      return token
    },

    /** True while the token could still be consumed (a cheap check before expensive work). */
    async isActive (token: string, purpose: LinkPurpose): Promise<boolean> {
      const doc = await tokens.findOne(
        { token_hash: hashToken(token), purpose, state: 'active', expires_at: { $gt: new Date() } },
        { projection: { _id: 1 } }
      )
      return doc !== null
    },

    /**
     * Marks the token used and returns its user, or null when unknown, expired, used or of another
     * purpose. Of concurrent uses exactly one wins: the claim on the token decides, not the update.
     */
    async consume (token: string, purpose: LinkPurpose): Promise<ObjectId | null> {
      const hash = hashToken(token)
      const now = new Date()
      const doc = await tokens.findOne({ token_hash: hash, purpose, state: 'active', expires_at: { $gt: now } })
      if (!doc || !await claims.tryClaim(`token:${hash}`, doc.expires_at)) return null
      await tokens.updateOne({ _id: doc._id }, { $set: { state: 'used', used_at: now } })
      return doc.user_id
    },

    /**
     * The user of a token already consumed, or being consumed right now, and not yet expired (the
     * second of two clicks on a link that worked; web clients in development mode send both at once).
     */
    async findConsumed (token: string, purpose: LinkPurpose): Promise<ObjectId | null> {
      const hash = hashToken(token)
      const doc = await tokens.findOne({ token_hash: hash, purpose, state: { $ne: 'void' }, expires_at: { $gt: new Date() } })
      return doc && (doc.state === 'used' || await claims.isClaimed(`token:${hash}`)) ? doc.user_id : null
    },

    async deleteAllOf (userId: ObjectId) {
      await tokens.deleteMany({ user_id: userId })
    },

    /** Kills the user's unused tokens of a purpose, e.g. older links once a new one is sent. */
    async voidActive (userId: ObjectId, purpose: LinkPurpose) {
      await tokens.updateMany({ user_id: userId, purpose, state: 'active' }, { $set: { state: 'void' } })
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    oneTimeTokens: ReturnType<typeof createOneTimeTokens>
  }
}

export default repositoryPlugin('oneTimeTokens', (db, fastify) =>
  createOneTimeTokens(db.collection<OneTimeTokenDocument>('one_time_tokens'), fastify.claims), ['claims'])
