import fp from 'fastify-plugin'
import type { ObjectId } from 'mongodb'
import type { LinkPurpose } from '../auth/one-time-tokens.js'
import type { Mail } from './templates.js'

type LinkMail = Extract<Mail, { kind: LinkPurpose }>

export interface LinkMails {
  /** How long a link of each purpose works. */
  lifetimeMs: Record<LinkPurpose, number>
  /** A new link for this purpose for the user (older ones stop working), as the mail that carries it. */
  issue (userId: ObjectId, purpose: LinkPurpose): Promise<LinkMail>
  /**
   * The link mail an anonymous request for this address asked for, or null when no account needs
   * one (unknown address; for verification, an address already verified).
   */
  compose (to: string, purpose: LinkPurpose): Promise<{ mail: LinkMail, userId: ObjectId } | null>
}

declare module 'fastify' {
  interface FastifyInstance {
    linkMails: LinkMails
  }
}

/** One-time links (the token and the mail that carries it). */
export default fp(async function linkMails (fastify) {
  const { oneTimeTokens, usersRepository, config } = fastify
  const lifetimeMs: Record<LinkPurpose, number> = {
    'verify-email': config.VERIFICATION_TOKEN_EXPIRE_HOURS * 3_600_000,
    'reset-password': config.RESET_TOKEN_EXPIRE_MINUTES * 60_000
  }

  async function issue (userId: ObjectId, purpose: LinkPurpose): Promise<LinkMail> {
    await oneTimeTokens.voidActive(userId, purpose)
    return { kind: purpose, token: await oneTimeTokens.issue(userId, purpose, lifetimeMs[purpose]) }
  }

  fastify.decorate('linkMails', {
    lifetimeMs,
    issue,
    async compose (to, purpose) {
      const user = await usersRepository.findByEmail(to)
      if (!user || (purpose === 'verify-email' && user.is_verified)) return null
      return { mail: await issue(user._id, purpose), userId: user._id }
    }
  } satisfies LinkMails)
}, { name: 'link-mails', dependencies: ['env', 'one-time-tokens', 'users-repository'] })
