import fp from 'fastify-plugin'
import type { ObjectId } from 'mongodb'

declare module 'fastify' {
  interface FastifyInstance {
    accountDeletion: { delete (userId: ObjectId, email: string): Promise<void> }
  }
}

/**
 * Deletes everything of a user. Sessions end first (tokens and streams stop at once); the user
 * document goes last, so an interrupted deletion can be finished by logging in and deleting again.
 */
export default fp(async function accountDeletion (fastify) {
  const { sessionsRepository, liveStreams, chatsRepository, oneTimeTokens, mailer, loginThrottle, usersRepository } = fastify
  fastify.decorate('accountDeletion', {
    async delete (userId: ObjectId, email: string) {
      await liveStreams.endSessions(userId.toHexString(), await sessionsRepository.revokeAll(userId))
      await chatsRepository.deleteAllOf(userId)
      await oneTimeTokens.deleteAllOf(userId)
      await mailer.deleteFor(email)
      await loginThrottle.reset(email)
      await sessionsRepository.deleteAllOf(userId)
      await usersRepository.delete(userId)
    }
  })
}, {
  name: 'account-deletion',
  dependencies: ['sessions-repository', 'live-streams', 'chats-repository', 'one-time-tokens', 'mailer', 'login-throttle', 'users-repository']
})
