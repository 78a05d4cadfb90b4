import fp from 'fastify-plugin'
import type { LinkPurpose } from '../auth/one-time-tokens.js'
import type { Claims } from '../platform/claims.js'

/** At most one link mail of a purpose per address per window, across every instance (a claim per window). */
export function createMailThrottle (claims: Claims, windowSeconds: number) {
  const key = (email: string, purpose: LinkPurpose) => `mail:${purpose}:${email}`
  const windowEnd = () => new Date(Date.now() + windowSeconds * 1000)
  return {
    /** Starts the window now whatever came before (a sign-up always gets its verification mail). */
    async record (email: string, purpose: LinkPurpose) {
      await claims.forceClaim(key(email, purpose), windowEnd())
    },

    async tryAcquire (email: string, purpose: LinkPurpose): Promise<boolean> {
      if (windowSeconds === 0) return true
      return await claims.tryClaimWindow(key(email, purpose), windowEnd())
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
}, { name: 'mail-throttle', dependencies: ['env', 'claims'] })
