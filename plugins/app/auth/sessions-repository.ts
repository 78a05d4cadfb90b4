import { setTimeout as sleep } from 'node:timers/promises'
import { ObjectId, type Collection } from 'mongodb'
import { parseObjectId } from '../../../lib/object-id.js'
import { findOwned } from '../../../lib/by-id.js'
import type { Session } from '../../../schemas/users.js'
import { createSealer, hashToken, newSecretToken, type Sealer } from '../../../lib/secrets.js'
import type { Claims } from '../platform/claims.js'
import { repositoryPlugin } from '../platform/repository-plugin.js'

export interface SessionDocument {
  _id: ObjectId
  user_id: ObjectId
  created_at: Date
  last_used_at: Date
  expires_at: Date
  user_agent: string | null
  ip: string | null
  revoked_at: Date | null
  /** SHA-256 of the one refresh token that works now. */
  refresh_hash: string
  /** The newest refresh token, encrypted, handed again to parallel refreshes within the grace. */
  grace_token: string | null
}

export interface SessionOrigin {
  userAgent?: string
  ip?: string
}

export type Rotation =
  | { outcome: 'rotated', userId: ObjectId, sessionId: ObjectId, refreshToken: string }
  | { outcome: 'reused', userId: ObjectId, sessionId: ObjectId }
  | { outcome: 'invalid' }

/** Parallel refreshes with one token (tabs, retries) within this time share one rotation. */
export const REFRESH_REUSE_GRACE_MS = 10_000
/** How often expired and revoked sessions are deleted. */
const PRUNE_INTERVAL_MS = 10 * 60_000
/** last_used_at is refreshed at most this often by ordinary requests. */
const TOUCH_INTERVAL_MS = 60_000

/**
 * Logins. Access tokens name their session, so ending it (logout, password change, reset) ends every
 * token issued for it on the very next request. Refresh tokens are opaque, stored hashed and
 * rotated on every use; presenting a rotated one (after the grace) revokes the session.
 */
export function createSessionsRepository (sessions: Collection<SessionDocument>, claims: Claims, sealer: Sealer, lifetimeMs: number) {
  const active = () => ({ revoked_at: null, expires_at: { $gt: new Date() } })
  const isLive = (s: SessionDocument) => s.revoked_at === null && s.expires_at > new Date()
  /** Sessions whose last_used_at update is on its way, so requests read meanwhile do not send it again. */
  const touching = new Set<string>()

  async function revokeById (id: ObjectId) {
    await sessions.updateOne({ _id: id, revoked_at: null }, { $set: { revoked_at: new Date(), grace_token: null } })
  }

  /** A rotated token presented again: the same new token within the grace, else the session dies. */
  async function replay (hash: string): Promise<Rotation> {
    const claim = await claims.find(`refresh:${hash}`)
    const session = claim?.owner ? await sessions.findOne({ _id: new ObjectId(claim.owner) }) : null
    if (!claim || !session || !isLive(session)) return { outcome: 'invalid' }
    const token = session.grace_token ? sealer.open(session.grace_token) : null
    if (token && Date.now() - claim.created_at.getTime() <= REFRESH_REUSE_GRACE_MS) {
      return { outcome: 'rotated', userId: session.user_id, sessionId: session._id, refreshToken: token }
    }
    await revokeById(session._id)
    return { outcome: 'reused', userId: session.user_id, sessionId: session._id }
  }

  return {
    async ensureIndexes () {
      await sessions.createIndex({ user_id: 1, revoked_at: 1 }, { name: 'user_sessions' })
      await sessions.createIndex({ refresh_hash: 1 }, { unique: true, name: 'refresh_hash_unique' })
      await sessions.createIndex({ expires_at: 1 }, { name: 'expiry' })
    },

    async deleteAllOf (userId: ObjectId) {
      await sessions.deleteMany({ user_id: userId })
    },

    async create (userId: ObjectId, origin: SessionOrigin): Promise<{ sessionId: ObjectId, refreshToken: string }> {
      const now = new Date()
      const refreshToken = newSecretToken()
      const { insertedId } = await sessions.insertOne({
        user_id: userId,
        created_at: now,
        last_used_at: now,
        expires_at: new Date(now.getTime() + lifetimeMs),
        user_agent: origin.userAgent?.slice(0, 512) ?? null,
        ip: origin.ip ?? null,
        revoked_at: null,
        refresh_hash: hashToken(refreshToken),
        grace_token: null
      } as SessionDocument)
      return { sessionId: insertedId, refreshToken }
    },

    /** Exchanges a refresh token for a new one. Exactly one of concurrent uses rotates (a claim decides). */
    async rotate (refreshToken: string): Promise<Rotation> {
      const hash = hashToken(refreshToken)
      const current = await sessions.findOne({ refresh_hash: hash })
      if (current && !isLive(current)) return { outcome: 'invalid' }
      if (current && await claims.tryClaim(`refresh:${hash}`, current.expires_at, current._id.toHexString())) {
        const next = newSecretToken()
        await sessions.updateOne({ _id: current._id }, {
          $set: { refresh_hash: hashToken(next), grace_token: sealer.seal(next), last_used_at: new Date() }
        })
        return { outcome: 'rotated', userId: current.user_id, sessionId: current._id, refreshToken: next }
      }
      if (current) {
        // A parallel refresh with this token won the claim: wait for its rotation to be stored.
        for (let i = 0; i < 40 && await sessions.countDocuments({ refresh_hash: hash }, { limit: 1 }) > 0; i++) await sleep(25)
      }
      return await replay(hash)
    },

    /** Whether the session is live; refreshes its last_used_at now and then, without waiting. */
    async isActive (sessionId: string, userId: string): Promise<boolean> {
      const _id = parseObjectId(sessionId)
      const owner = parseObjectId(userId)
      if (!_id || !owner) return false
      const found = await findOwned(sessions, _id, owner, { last_used_at: 1, revoked_at: 1, expires_at: 1 })
      if (!found || !isLive(found)) return false
      if (Date.now() - found.last_used_at.getTime() > TOUCH_INTERVAL_MS && !touching.has(sessionId)) {
        touching.add(sessionId)
        sessions.updateOne({ _id }, { $set: { last_used_at: new Date() } }).catch(() => {}).finally(() => touching.delete(sessionId))
      }
      return true
    },

    /** The user's live sessions, most recently used first; `current` marks the session asking. */
    async list (userId: string, currentSessionId: string): Promise<Session[]> {
      const docs = await sessions.find({ user_id: new ObjectId(userId), ...active() },
        { projection: { created_at: 1, last_used_at: 1, user_agent: 1, ip: 1 } }).sort({ last_used_at: -1 }).toArray()
      return docs.map((s) => ({
        id: s._id.toHexString(),
        created_at: s.created_at.toISOString(),
        last_used_at: s.last_used_at.toISOString(),
        user_agent: s.user_agent,
        ip: s.ip,
        current: s._id.toHexString() === currentSessionId
      }))
    },

    /** Ends one of the user's live sessions; false when there is no such session. */
    async revoke (userId: string, sessionId: string): Promise<boolean> {
      const _id = parseObjectId(sessionId)
      if (!_id) return false
      const { modifiedCount } = await sessions.updateOne({ _id, user_id: new ObjectId(userId), revoked_at: null },
        { $set: { revoked_at: new Date(), grace_token: null } })
      return modifiedCount > 0
    },

    /** Ends every session of the user, except `keep` when given; returns the ids it ended. */
    async revokeAll (userId: ObjectId, keep?: string): Promise<string[]> {
      const filter: Record<string, unknown> = { user_id: userId, revoked_at: null }
      const keepId = parseObjectId(keep)
      if (keepId) filter._id = { $ne: keepId }
      const ids = (await sessions.find(filter, { projection: { _id: 1 } }).toArray()).map((s) => s._id)
      if (ids.length > 0) await sessions.updateMany({ _id: { $in: ids } }, { $set: { revoked_at: new Date(), grace_token: null } })
      return ids.map((id) => id.toHexString())
    },

    /** Deletes expired and revoked sessions: they can never be used again. */
    async prune () {
      const now = new Date()
      const expired = await sessions.deleteMany({ expires_at: { $lte: now } })
      const revoked = await sessions.deleteMany({ revoked_at: { $lte: now } })
      return expired.deletedCount + revoked.deletedCount
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    sessionsRepository: ReturnType<typeof createSessionsRepository>
  }
}

export default repositoryPlugin('sessionsRepository', (db, fastify) => {
  const { SECRET_KEY, REFRESH_TOKEN_EXPIRE_DAYS } = fastify.config
  // Without a configured secret (development), grace tokens only need to outlive this process.
  const sealer = createSealer(SECRET_KEY ?? newSecretToken(), 'refresh-token-grace')
  const repository = createSessionsRepository(db.collection<SessionDocument>('sessions'), fastify.claims, sealer, REFRESH_TOKEN_EXPIRE_DAYS * 86_400_000)
  fastify.periodicJobs.add('session pruning', {
    everyMs: PRUNE_INTERVAL_MS,
    async task () {
      const pruned = await repository.prune()
      if (pruned > 0) fastify.log.info({ pruned }, 'expired and revoked sessions deleted')
    }
  })
  return repository
}, ['env', 'claims', 'periodic-jobs'])
