import fp from 'fastify-plugin'
import type { ObjectId } from 'mongodb'

export interface LinkMails {
  /** A new verification link; older ones stop working. */
  sendVerification (userId: ObjectId, email: string): Promise<void>
  sendPasswordReset (userId: ObjectId, email: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    linkMails: LinkMails
  }
}

/** Mails that carry a one-time link: the token is issued and the mail recorded together. */
export default fp(async function linkMails (fastify) {
  const { oneTimeTokens, mailer, config } = fastify
  fastify.decorate('linkMails', {
    async sendVerification (userId, email) {
      await oneTimeTokens.voidActive(userId, 'verify-email')
      const token = await oneTimeTokens.issue(userId, 'verify-email', config.VERIFICATION_TOKEN_EXPIRE_HOURS * 3_600_000)
      await mailer.send(email, { kind: 'verify-email', token })
    },
    async sendPasswordReset (userId, email) {
      await oneTimeTokens.voidActive(userId, 'reset-password')
      const token = await oneTimeTokens.issue(userId, 'reset-password', config.RESET_TOKEN_EXPIRE_MINUTES * 60_000)
      await mailer.send(email, { kind: 'reset-password', token })
    }
  } satisfies LinkMails)
}, { name: 'link-mails', dependencies: ['one-time-tokens', 'mailer'] })
