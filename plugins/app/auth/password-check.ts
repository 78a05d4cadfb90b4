import fp from 'fastify-plugin'
import type { FastifyBaseLogger } from 'fastify'
import type { ObjectId } from 'mongodb'

/** What a password is checked against: the account's stored hash. */
export interface Credentials {
  _id: ObjectId
  password_hash: string
}

export interface PasswordCheck {
  /**
   * Whether `password` is the password of `account`, the account of `email` (null when there is
   * none: a dummy hash takes the same time). Throws TooManyFailuresError while the address is
   * blocked. A failure is counted against the address; a success clears the count and upgrades a
   * hash made with older parameters.
   */
  verify (email: string, account: Credentials | null, password: string, log: FastifyBaseLogger): Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance {
    passwordCheck: PasswordCheck
  }
}

/** The one password check of login, password change and account deletion. */
export default fp(async function passwordCheck (fastify) {
  const { loginThrottle, passwordHasher, usersRepository } = fastify
  fastify.decorate('passwordCheck', {
    async verify (email, account, password, log) {
      await loginThrottle.assertAllowed(email, log, account?._id)
      if (!account) {
        await passwordHasher.verifyNothing(password)
        await loginThrottle.recordFailure(email)
        return false
      }
      const check = await passwordHasher.verify(account.password_hash, password)
      if (!check.ok) {
        await loginThrottle.recordFailure(email)
        return false
      }
      await loginThrottle.reset(email)
      if (check.needsRehash) await usersRepository.upgradePasswordHash(account._id, account.password_hash, await passwordHasher.hash(password))
      return true
    }
  } satisfies PasswordCheck)
}, { name: 'password-check', dependencies: ['login-throttle', 'password-hasher', 'users-repository'] })
