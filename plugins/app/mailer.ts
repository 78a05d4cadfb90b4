import fp from 'fastify-plugin'
import { renderMail, type Mail } from '../../lib/mail-templates.js'

export interface Mailer {
  /** Records a mail in the outbox (durably, before returning) for the worker to send. */
  send (to: string, mail: Mail): Promise<void>
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
  const { config, mailOutboxRepository: outbox, mailOutboxWorker: worker } = fastify
  const settings = {
    frontendUrl: config.FRONTEND_URL,
    verificationHours: config.VERIFICATION_TOKEN_EXPIRE_HOURS,
    resetMinutes: config.RESET_TOKEN_EXPIRE_MINUTES
  }
  const linkLifetimeMs: Partial<Record<Mail['kind'], number>> = {
    'verify-email': config.VERIFICATION_TOKEN_EXPIRE_HOURS * 3_600_000,
    'reset-password': config.RESET_TOKEN_EXPIRE_MINUTES * 60_000
  }

  fastify.decorate('mailer', {
    async send (to, mail) {
      const { subject, text, html, link } = renderMail(mail, settings)
      const lifetime = linkLifetimeMs[mail.kind]
      const expiresAt = lifetime === undefined ? null : new Date(Date.now() + lifetime)
      await outbox.add({ to, kind: mail.kind, subject, text, html, ...(link ? { link } : {}), expires_at: expiresAt })
      worker.wake()
    },
    async deleteFor (to) {
      await outbox.deleteUnsent(to)
    }
  } satisfies Mailer)
}, { name: 'mailer', dependencies: ['env', 'mail-outbox-repository', 'mail-outbox-worker'] })
