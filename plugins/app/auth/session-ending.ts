import fp from 'fastify-plugin'
import { ObjectId } from 'mongodb'
import type { SessionEndReason } from '../../../schemas/users.js'

/** Work that follows the end of sessions elsewhere (chat: their live streams stop). */
export type SessionsEndedListener = (userId: string, sessionIds: string[]) => Promise<void>

export interface SessionEnding {
  /**
   * Ends one of the user's sessions (logout, DELETE /users/me/sessions/{id}, a replayed refresh
   * token); false when it was not live. Its listeners run either way. With a `reason`, the user's
   * timeline shows a `session_ended` event when it was live.
   */
  end (userId: string, sessionId: string, reason?: SessionEndReason): Promise<boolean>
  /**
   * Ends every session of the user but `keep` (password change, reset, logout-all, "not me",
   * deletion); returns how many ended. With a `reason`, one `session_ended` event counts them.
   */
  endAll (userId: string, keep?: string, reason?: SessionEndReason): Promise<number>
  onEnd (listener: SessionsEndedListener): void
}

declare module 'fastify' {
  interface FastifyInstance {
    sessionEnding: SessionEnding
  }
}

/** The one way sessions end: revoked in the database, recorded in the timeline, then whatever depends on them told. */
export default fp(async function sessionEnding (fastify) {
  const { sessionsRepository, securityEvents } = fastify
  const listeners: SessionsEndedListener[] = []
  const tell = async (userId: string, sessionIds: string[]) => {
    for (const listener of listeners) await listener(userId, sessionIds)
  }

  fastify.decorate('sessionEnding', {
    async end (userId, sessionId, reason) {
      const ended = await sessionsRepository.revoke(userId, sessionId)
      const recorded = ended && reason && securityEvents.record(new ObjectId(userId), 'session_ended', { session_id: sessionId, count: 1, reason })
      await Promise.all([recorded, tell(userId, [sessionId])])
      return ended
    },
    async endAll (userId, keep, reason) {
      const ended = await sessionsRepository.revokeAll(new ObjectId(userId), keep)
      const recorded = ended.length > 0 && reason && securityEvents.record(new ObjectId(userId), 'session_ended', { count: ended.length, reason })
      await Promise.all([recorded, tell(userId, ended)])
      return ended.length
    },
    onEnd (listener) { listeners.push(listener) }
  } satisfies SessionEnding)
}, { name: 'session-ending', dependencies: ['sessions-repository', 'security-events'] })
