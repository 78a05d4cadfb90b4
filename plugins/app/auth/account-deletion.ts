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
 * Deletes everything of a user. Sessions end first (tokens and streams stop at once); the user
 * document goes last, so an interrupted deletion can be finished by logging in and deleting again.
 */
export default fp(async function accountDeletion (fastify) {
  const { sessionEnding, sessionsRepository, oneTimeTokens, mailer, loginThrottle, usersRepository } = fastify
  const steps: Array<{ name: string, step: DeletionStep }> = []
  fastify.decorate('accountDeletion', {
    add (name, step) { steps.push({ name, step }) },
    async delete (userId, email) {
      await sessionEnding.endAll(userId.toHexString())
      for (const { step } of steps) await step(userId)
      await oneTimeTokens.deleteAllOf(userId)
      await mailer.deleteFor(email)
      await loginThrottle.clear(email)
      await sessionsRepository.deleteAllOf(userId)
      await usersRepository.delete(userId)
    }
  } satisfies AccountDeletion)
}, {
  name: 'account-deletion',
  dependencies: ['session-ending', 'sessions-repository', 'one-time-tokens', 'mailer', 'login-throttle', 'users-repository']
})
