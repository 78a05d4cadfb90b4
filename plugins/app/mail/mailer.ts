import fp from 'fastify-plugin'
import { renderMail, SUBJECTS, templateSettings, type Mail } from './templates.js'
import type { LinkPurpose } from '../auth/one-time-tokens.js'

export interface Mailer {
  /** Records a mail in the outbox (durably, before returning) for the worker to send. */
  send (to: string, mail: Mail): Promise<void>
  /**
   * Records a link mail asked for anonymously: the worker issues the link if an account needs one,
   * so the request does the same work whether or not the address has an account.
   */
  request (to: string, purpose: LinkPurpose, requestId: string): Promise<void>
  /** Removes the mails to this address not sent yet (an account being deleted). */
  deleteFor (to: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    mailer: Mailer
  }
}

/**
 * Mails go through the outbox: a request only records the rendered mail, and the outbox worker
 * sends it (or, without MAIL_SERVER, writes it to the log), retrying through outages and restarts.
 */
export default fp(async function mailer (fastify) {
  const { config, mailOutboxRepository: outbox, mailOutboxWorker: worker, linkMails } = fastify
  const settings = templateSettings(config)
  const linkLifetimeMs: Partial<Record<Mail['kind'], number>> = { ...linkMails.lifetimeMs, 'not-me': linkMails.lifetimeMs['reset-password'] }

  fastify.decorate('mailer', {
    async send (to, mail) {
      const { subject, text, html, link } = renderMail(mail, settings)
      const lifetime = linkLifetimeMs[mail.kind]
      const expiresAt = lifetime === undefined ? null : new Date(Date.now() + lifetime)
      await outbox.add({ to, kind: mail.kind, subject, text, html, ...(link ? { link } : {}), expires_at: expiresAt })
      worker.wake()
    },
    async request (to, purpose, requestId) {
      const expiresAt = new Date(Date.now() + linkMails.lifetimeMs[purpose])
      await outbox.add({ to, kind: purpose, subject: SUBJECTS[purpose], compose: true, request_id: requestId, expires_at: expiresAt })
      // No wake-up: the next poll (within a second) composes it, so the account lookup and the link
      // never overlap this request and its timing.
    },
    async deleteFor (to) {
      await outbox.deleteUnsent(to)
    }
  } satisfies Mailer)
}, { name: 'mailer', dependencies: ['env', 'mail-outbox-repository', 'mail-outbox-worker', 'link-mails'] })
