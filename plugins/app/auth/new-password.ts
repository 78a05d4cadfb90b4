import fp from 'fastify-plugin'
import type { ObjectId } from 'mongodb'
import type { EventFields } from './security-events.js'

export interface NewPasswordOptions {
  /** What the timeline calls it; also the reason of the sessions it ends. */
  event: 'password_changed' | 'password_reset_completed'
  /** Where the request came from (and for a change, its session): shown with the event. */
  origin: Pick<EventFields, 'ip' | 'user_agent' | 'session_id'>
  keepSession?: string
  email?: string
}

export interface NewPassword {
  /**
   * What a new password brings, for a password change and a reset alike: the new hash stored, every
   * other session ended (all but `keepSession`), unused reset links voided, the address's failed
   * password checks forgotten (a reset lifts a lockout), the event in the timeline, and the user told by mail.
   */
  store (userId: ObjectId, passwordHash: string, options: NewPasswordOptions): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    newPassword: NewPassword
  }
}

export default fp(async function newPassword (fastify) {
  const { usersRepository, sessionEnding, oneTimeTokens, loginThrottle, mailer, securityEvents } = fastify
  fastify.decorate('newPassword', {
    async store (userId, passwordHash, { event, origin, keepSession, email }) {
      await Promise.all([usersRepository.setPasswordHash(userId, passwordHash), securityEvents.record(userId, event, origin)])
      await sessionEnding.endAll(userId.toHexString(), keepSession, event)
      await oneTimeTokens.voidActive(userId, 'reset-password')
      const to = email ?? await usersRepository.emailOf(userId)
      if (!to) return
      await loginThrottle.clear(to)
      await mailer.send(to, { kind: 'password-changed' })
    }
  } satisfies NewPassword)
}, { name: 'new-password', dependencies: ['users-repository', 'session-ending', 'one-time-tokens', 'login-throttle', 'mailer', 'security-events'] })
