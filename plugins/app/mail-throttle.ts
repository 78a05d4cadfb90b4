import fp from 'fastify-plugin'
import type { Collection } from 'mongodb'
import { isDuplicateKey } from '../../lib/database-errors.js'

export type MailKind = 'verify-email' | 'reset-password'

interface ThrottleDocument {
  _id: string
  last_sent_at: Date
}

/**
 * At most one mail of a kind per address per window, across every instance: the upsert only
 * matches when the window has passed, and otherwise collides with the existing key.
 */
export function createMailThrottle (throttle: Collection<ThrottleDocument>, windowSeconds: number) {
  return {
    /** Starts the window now whatever came before (a sign-up always gets its verification mail). */
    async record (email: string, kind: MailKind) {
      await throttle.updateOne({ _id: `${kind}:${email}` }, { $set: { last_sent_at: new Date() } }, { upsert: true })
    },

    async tryAcquire (email: string, kind: MailKind): Promise<boolean> {
      if (windowSeconds === 0) return true
      const now = new Date()
      try {
        await throttle.updateOne(
          { _id: `${kind}:${email}`, last_sent_at: { $lte: new Date(now.getTime() - windowSeconds * 1000) } },
          { $set: { last_sent_at: now } },
          { upsert: true }
        )
        return true
      } catch (error) {
        if (isDuplicateKey(error)) return false
        throw error
      }
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
  fastify.decorate('mailThrottle', createMailThrottle(
    fastify.mongo.db!.collection<ThrottleDocument>('mail_throttle'),
    fastify.config.VERIFICATION_RESEND_SECONDS
  ))
}, { name: 'mail-throttle', dependencies: ['mongodb'] })
