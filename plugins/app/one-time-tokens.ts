import { createHash, randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { Collection, ObjectId } from 'mongodb'

export type TokenPurpose = 'verify-email' | 'reset-password'

interface OneTimeTokenDocument {
  _id: ObjectId
  token_hash: string
  purpose: TokenPurpose
  user_id: ObjectId
  /** active → used (consumed once) or void (replaced or killed before use). */
  state: 'active' | 'used' | 'void'
  created_at: Date
  expires_at: Date
  used_at: Date | null
}

/** 256 random bits; only their SHA-256 is stored, so a database leak yields no usable link. */
function newToken () {
  const token = randomBytes(32).toString('base64url')
  return { token, hash: hashToken(token) }
}

function hashToken (token: string) {
  return createHash('sha256').update(token).digest('base64url')
}

/**
 * Mail-link tokens: bound to one purpose and one user, consumed by a single atomic update whose
 * filter also enforces expiry (no cleanup job is trusted with that).
 */
export function createOneTimeTokens (tokens: Collection<OneTimeTokenDocument>) {
  return {
    async ensureIndexes () {
      await tokens.createIndex({ token_hash: 1 }, { unique: true, name: 'token_hash_unique' })
      await tokens.createIndex({ user_id: 1, purpose: 1, state: 1 }, { name: 'user_purpose' })
    },

    async issue (userId: ObjectId, purpose: TokenPurpose, lifetimeMs: number): Promise<string> {
      const { token, hash } = newToken()
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
    async isActive (token: string, purpose: TokenPurpose): Promise<boolean> {
      const doc = await tokens.findOne(
        { token_hash: hashToken(token), purpose, state: 'active', expires_at: { $gt: new Date() } },
        { projection: { _id: 1 } }
      )
      return doc !== null
    },

    /** Marks the token used and returns its user, or null when unknown, expired, used or of another purpose. */
    async consume (token: string, purpose: TokenPurpose): Promise<ObjectId | null> {
      const now = new Date()
      const doc = await tokens.findOneAndUpdate(
        { token_hash: hashToken(token), purpose, state: 'active', expires_at: { $gt: now } },
        { $set: { state: 'used', used_at: now } }
      )
      return doc?.user_id ?? null
    },

    /** The user of a token already consumed and not yet expired (a second click on a link that worked). */
    async findConsumed (token: string, purpose: TokenPurpose): Promise<ObjectId | null> {
      const doc = await tokens.findOne(
        { token_hash: hashToken(token), purpose, state: 'used', expires_at: { $gt: new Date() } },
        { projection: { user_id: 1 } }
      )
      return doc?.user_id ?? null
    },

    /** Kills the user's unused tokens of a purpose, e.g. older links once a new one is sent. */
    async voidActive (userId: ObjectId, purpose: TokenPurpose) {
      await tokens.updateMany({ user_id: userId, purpose, state: 'active' }, { $set: { state: 'void' } })
    }
  }
}

export type OneTimeTokens = ReturnType<typeof createOneTimeTokens>

declare module 'fastify' {
  interface FastifyInstance {
    oneTimeTokens: OneTimeTokens
  }
}

export default fp(async function oneTimeTokens (fastify) {
  const service = createOneTimeTokens(fastify.mongo.db!.collection<OneTimeTokenDocument>('one_time_tokens'))
  fastify.databaseSetup.add('one-time tokens indexes', () => service.ensureIndexes())
  fastify.decorate('oneTimeTokens', service)
}, { name: 'one-time-tokens', dependencies: ['mongodb', 'database-setup'] })
