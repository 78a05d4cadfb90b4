import fp from 'fastify-plugin'
import { ObjectId } from 'mongodb'

/** Work that follows the end of sessions elsewhere (chat: their live streams stop). */
export type SessionsEndedListener = (userId: string, sessionIds: string[]) => Promise<void>

export interface SessionEnding {
  /**
   * Ends one of the user's sessions (logout, DELETE /users/me/sessions/{id}, a replayed refresh
   * token); false when it was not live. Its listeners run either way.
   */
  end (userId: string, sessionId: string): Promise<boolean>
  /** Ends every session of the user but `keep` (password change, reset, logout-all, deletion); returns how many ended. */
  endAll (userId: string, keep?: string): Promise<number>
  onEnd (listener: SessionsEndedListener): void
}

declare module 'fastify' {
  interface FastifyInstance {
    sessionEnding: SessionEnding
  }
}

/** The one way sessions end: revoked in the database, then whatever depends on them told. */
export default fp(async function sessionEnding (fastify) {
  const { sessionsRepository } = fastify
  const listeners: SessionsEndedListener[] = []
  const tell = async (userId: string, sessionIds: string[]) => {
    for (const listener of listeners) await listener(userId, sessionIds)
  }

  fastify.decorate('sessionEnding', {
    async end (userId, sessionId) {
      const ended = await sessionsRepository.revoke(userId, sessionId)
      await tell(userId, [sessionId])
      return ended
    },
    async endAll (userId, keep) {
      const ended = await sessionsRepository.revokeAll(new ObjectId(userId), keep)
      await tell(userId, ended)
      return ended.length
    },
    onEnd (listener) { listeners.push(listener) }
  } satisfies SessionEnding)
}, { name: 'session-ending', dependencies: ['sessions-repository'] })
