import fp from 'fastify-plugin'
import type { ObjectId } from 'mongodb'

export interface NewPassword {
  /**
   * What a new password brings, for a password change and a reset alike: the new hash stored, every
   * other session ended (all but `keepSession`), unused reset links voided, the address's failed
   * password checks forgotten (a reset lifts a lockout), and the user told by mail.
   */
  store (userId: ObjectId, passwordHash: string, options?: { keepSession?: string, email?: string }): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    newPassword: NewPassword
  }
}

export default fp(async function newPassword (fastify) {
  const { usersRepository, sessionEnding, oneTimeTokens, loginThrottle, mailer } = fastify
  fastify.decorate('newPassword', {
    async store (userId, passwordHash, { keepSession, email } = {}) {
      await usersRepository.setPasswordHash(userId, passwordHash)
      await sessionEnding.endAll(userId.toHexString(), keepSession)
      await oneTimeTokens.voidActive(userId, 'reset-password')
      const to = email ?? await usersRepository.emailOf(userId)
      if (!to) return
      await loginThrottle.clear(to)
      await mailer.send(to, { kind: 'password-changed' })
    }
  } satisfies NewPassword)
}, { name: 'new-password', dependencies: ['users-repository', 'session-ending', 'one-time-tokens', 'login-throttle', 'mailer'] })
