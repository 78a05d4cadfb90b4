import fp from 'fastify-plugin'
import type { Claims } from '../platform/claims.js'

export type MailKind = 'verify-email' | 'reset-password'

/** At most one mail of a kind per address per window, across every instance (a claim per window). */
export function createMailThrottle (claims: Claims, windowSeconds: number) {
  const key = (email: string, kind: MailKind) => `mail:${kind}:${email}`
  const windowEnd = () => new Date(Date.now() + windowSeconds * 1000)
  return {
    /** Starts the window now whatever came before (a sign-up always gets its verification mail). */
    async record (email: string, kind: MailKind) {
      await claims.forceClaim(key(email, kind), windowEnd())
    },

    async tryAcquire (email: string, kind: MailKind): Promise<boolean> {
      if (windowSeconds === 0) return true
      return await claims.tryClaimWindow(key(email, kind), windowEnd())
    }
  }
}

export type MailThrottle = ReturnType<typeof createMailThrottle>

declare module 'fastify' {
  interface FastifyInstance {
    mailThrottle: MailThrottle
  }
}

export default fp(async function mailThrottle (fastify) {
  fastify.decorate('mailThrottle', createMailThrottle(fastify.claims, fastify.config.VERIFICATION_RESEND_SECONDS))
}, { name: 'mail-throttle', dependencies: ['claims'] })
