import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import type { ObjectId } from 'mongodb'
import { TooManyFailuresError } from './errors.js'
import { originOf } from './security-events.js'

/** What a password is checked against: the account's stored hash. */
export interface Credentials {
  _id: ObjectId
  password_hash: string
}

export interface PasswordCheck {
  /**
   * Whether `password` is the password of `account`, the account of `email` (null when there is
   * none: a dummy hash takes the same time), asked by `request` (its client IP, user agent and log).
   * Throws TooManyFailuresError, without hashing, when the check has no place left under the limits
   * of the address and IP or of the address. A failure keeps its place; a success clears the count
   * of the address and IP and upgrades a hash made with older parameters. Failures and lockouts of
   * an account go to its timeline, grouped per IP and window, written in the background so the
   * refusal takes the same time for an address without an account.
   */
  verify (email: string, account: Credentials | null, password: string, request: Pick<FastifyRequest, 'ip' | 'log' | 'headers'>): Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance {
    passwordCheck: PasswordCheck
  }
}

/** The one password check of login, password change and account deletion. */
export default fp(async function passwordCheck (fastify) {
  const { loginThrottle, passwordHasher, usersRepository, securityEvents } = fastify
  fastify.decorate('passwordCheck', {
    async verify (email, account, password, request) {
      const { ip, log } = request
      const attempt = await loginThrottle.begin(email, ip, log, account?._id).catch((error: unknown) => {
        if (account && error instanceof TooManyFailuresError) {
          const scope = error.scope === 'address' ? 'address' : ip
          securityEvents.countLater(account._id, 'locked_out', scope, { ...originOf(request), reason: error.scope })
        }
        throw error
      })
      let check: Awaited<ReturnType<typeof passwordHasher.verify>> | undefined
      try {
        if (account) check = await passwordHasher.verify(account.password_hash, password)
        else await passwordHasher.verifyNothing(password)
      } catch (error) {
        await attempt.abandon()
        throw error
      }
      if (!account || !check?.ok) { // the failure keeps its place
        if (account) securityEvents.countLater(account._id, 'sign_in_failed', ip, originOf(request))
        return false
      }
      await attempt.succeeded()
      if (check.needsRehash) await usersRepository.upgradePasswordHash(account._id, account.password_hash, await passwordHasher.hash(password))
      return true
    }
  } satisfies PasswordCheck)
}, { name: 'password-check', dependencies: ['login-throttle', 'password-hasher', 'users-repository', 'security-events'] })
