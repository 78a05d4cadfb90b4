import fp from 'fastify-plugin'
import type { ObjectId } from 'mongodb'
import type { Mail } from './templates.js'

export type LinkKind = 'verify-email' | 'reset-password'
type LinkMail = Extract<Mail, { kind: LinkKind }>

export interface LinkMails {
  /** How long a link of each kind works. */
  lifetimeMs: Record<LinkKind, number>
  /** A new link of this kind for the user (older ones stop working), as the mail that carries it. */
  issue (userId: ObjectId, kind: LinkKind): Promise<LinkMail>
  /**
   * The link mail an anonymous request for this address asked for, or null when no account needs
   * one (unknown address; for verification, an address already verified).
   */
  compose (to: string, kind: LinkKind): Promise<{ mail: LinkMail, userId: ObjectId } | null>
}

declare module 'fastify' {
  interface FastifyInstance {
    linkMails: LinkMails
  }
}

/** One-time links (the token and the mail that carries it). */
export default fp(async function linkMails (fastify) {
  const { oneTimeTokens, usersRepository, config } = fastify
  const lifetimeMs: Record<LinkKind, number> = {
    'verify-email': config.VERIFICATION_TOKEN_EXPIRE_HOURS * 3_600_000,
    'reset-password': config.RESET_TOKEN_EXPIRE_MINUTES * 60_000
  }

  async function issue (userId: ObjectId, kind: LinkKind): Promise<LinkMail> {
    await oneTimeTokens.voidActive(userId, kind)
    return { kind, token: await oneTimeTokens.issue(userId, kind, lifetimeMs[kind]) }
  }

  fastify.decorate('linkMails', {
    lifetimeMs,
    issue,
    async compose (to, kind) {
      const user = await usersRepository.findByEmail(to)
      if (!user || (kind === 'verify-email' && user.is_verified)) return null
      return { mail: await issue(user._id, kind), userId: user._id }
    }
  } satisfies LinkMails)
}, { name: 'link-mails', dependencies: ['env', 'one-time-tokens', 'users-repository'] })
