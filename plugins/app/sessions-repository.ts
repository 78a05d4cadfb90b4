import fp from 'fastify-plugin'
import type { Collection, ObjectId } from 'mongodb'
import { parseObjectId } from '../../lib/object-id.js'

export interface SessionDocument {
  _id: ObjectId
  user_id: ObjectId
  created_at: Date
  last_used_at: Date
  user_agent: string | null
  ip: string | null
  revoked_at: Date | null
}

export interface SessionOrigin {
  userAgent?: string
  ip?: string
}

/**
 * A login. Access tokens name their session, so ending it (logout, password change or reset) ends
 * every token issued for it on the very next request.
 */
export function createSessionsRepository (sessions: Collection<SessionDocument>) {
  return {
    async ensureIndexes () {
      await sessions.createIndex({ user_id: 1, revoked_at: 1 }, { name: 'user_sessions' })
    },

    async create (userId: ObjectId, origin: SessionOrigin): Promise<ObjectId> {
      const now = new Date()
      const { insertedId } = await sessions.insertOne({
        user_id: userId,
        created_at: now,
        last_used_at: now,
        user_agent: origin.userAgent?.slice(0, 512) ?? null,
        ip: origin.ip ?? null,
        revoked_at: null
      } as SessionDocument)
      return insertedId
    },

    async isActive (sessionId: string, userId: string): Promise<boolean> {
      const _id = parseObjectId(sessionId)
      const owner = parseObjectId(userId)
      if (!_id || !owner) return false
      const found = await sessions.findOne({ _id, user_id: owner, revoked_at: null }, { projection: { _id: 1 } })
      return found !== null
    },

    /** The ids among these that are no longer active sessions (revoked or deleted). */
    async findEnded (sessionIds: string[]): Promise<string[]> {
      const ids = sessionIds.map(parseObjectId).filter((id): id is ObjectId => id !== null)
      const active = await sessions.find({ _id: { $in: ids }, revoked_at: null }, { projection: { _id: 1 } }).toArray()
      const alive = new Set(active.map((s) => s._id.toHexString()))
      return sessionIds.filter((id) => !alive.has(id))
    },

    /** Ends every session of the user, except `keep` when given. */
    async revokeAll (userId: ObjectId, keep?: string) {
      const filter: Record<string, unknown> = { user_id: userId, revoked_at: null }
      const keepId = parseObjectId(keep)
      if (keepId) filter._id = { $ne: keepId }
      await sessions.updateMany(filter, { $set: { revoked_at: new Date() } })
    }
  }
}

export type SessionsRepository = ReturnType<typeof createSessionsRepository>

declare module 'fastify' {
  interface FastifyInstance {
    sessionsRepository: SessionsRepository
  }
}

export default fp(async function sessionsRepository (fastify) {
  const repository = createSessionsRepository(fastify.mongo.db!.collection<SessionDocument>('sessions'))
  fastify.databaseSetup.add('sessions indexes', () => repository.ensureIndexes())
  fastify.decorate('sessionsRepository', repository)
}, { name: 'sessions-repository', dependencies: ['mongodb', 'database-setup'] })
