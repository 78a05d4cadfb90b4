import fp from 'fastify-plugin'
import type { ObjectId } from 'mongodb'

/** What another domain deletes of a user (chat: their chats and messages). */
export type DeletionStep = (userId: ObjectId) => Promise<void>

export interface AccountDeletion {
  /** Adds a step, run after the user's sessions have ended. */
  add (name: string, step: DeletionStep): void
  delete (userId: ObjectId, email: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    accountDeletion: AccountDeletion
  }
}

/**
 * Deletes everything of a user. The user document goes first, so a login whose password check was
 * racing this cannot keep a session (it finds its user gone, see routes/auth/login.ts); then the
 * sessions end (tokens and streams stop at once), and the rest goes.
 */
export default fp(async function accountDeletion (fastify) {
  const { sessionEnding, sessionsRepository, oneTimeTokens, mailer, loginThrottle, usersRepository, securityEvents } = fastify
  const steps: Array<{ name: string, step: DeletionStep }> = []
  fastify.decorate('accountDeletion', {
    add (name, step) { steps.push({ name, step }) },
    async delete (userId, email) {
      await usersRepository.delete(userId)
      await sessionEnding.endAll(userId.toHexString())
      for (const { step } of steps) await step(userId)
      await oneTimeTokens.deleteAllOf(userId)
      await mailer.deleteFor(email)
      await loginThrottle.clear(email)
      await sessionsRepository.deleteAllOf(userId)
      await securityEvents.deleteAllOf(userId)
    }
  } satisfies AccountDeletion)
}, {
  name: 'account-deletion',
  dependencies: ['session-ending', 'sessions-repository', 'one-time-tokens', 'mailer', 'login-throttle', 'users-repository', 'security-events']
})
