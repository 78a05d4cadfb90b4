import fp from 'fastify-plugin'
import nodemailer from 'nodemailer'
import { renderMail, type Mail, type RenderedMail } from '../../lib/mail-templates.js'

export interface Mailer {
  /** Records a mail for sending and returns without waiting for SMTP. */
  send (to: string, mail: Mail): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    mailer: Mailer
  }
}

/**
 * Sends through SMTP when MAIL_SERVER is set, otherwise writes each mail (with its link) to the log so
 * a developer can click through the flows. Sending happens after the response; close() waits for it.
 */
export default fp(async function mailer (fastify) {
  const config = fastify.config
  const settings = {
    frontendUrl: config.FRONTEND_URL,
    verificationHours: config.VERIFICATION_TOKEN_EXPIRE_HOURS,
    resetMinutes: config.RESET_TOKEN_EXPIRE_MINUTES
  }
  const from = { name: config.MAIL_FROM_NAME, address: config.MAIL_FROM }
  const log = fastify.log.child({ component: 'mailer' })

  let deliver: (to: string, rendered: RenderedMail) => Promise<void>
  if (config.MAIL_SERVER) {
    const transport = nodemailer.createTransport({
      host: config.MAIL_SERVER,
      port: config.MAIL_PORT,
      secure: config.MAIL_SECURE ?? config.MAIL_PORT === 465,
      auth: config.MAIL_USERNAME ? { user: config.MAIL_USERNAME, pass: config.MAIL_PASSWORD ?? '' } : undefined,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000
    })
    fastify.addHook('onClose', async () => { transport.close() })
    deliver = async (to, rendered) => {
      await transport.sendMail({ from, to, subject: rendered.subject, text: rendered.text, html: rendered.html })
    }
  } else {
    if (config.NODE_ENV === 'production') log.warn('MAIL_SERVER is unset: mails are written to the log, not sent')
    deliver = async (to, rendered) => {
      log.info(`mail to ${to}: "${rendered.subject}"${rendered.link ? ` ${rendered.link}` : ''} (MAIL_SERVER unset, not sent)`)
    }
  }

  const pending = new Set<Promise<void>>()
  fastify.addHook('onClose', async () => { await Promise.allSettled(pending) })

  fastify.decorate('mailer', {
    async send (to, mail) {
      const rendered = renderMail(mail, settings)
      const sending = deliver(to, rendered)
        .then(() => log.debug({ kind: mail.kind }, 'mail sent'))
        .catch((error: Error) => log.error({ kind: mail.kind, err: { message: error.message, code: (error as { code?: string }).code } }, 'mail not sent'))
        .finally(() => pending.delete(sending))
      pending.add(sending)
    }
  } satisfies Mailer)
}, { name: 'mailer', dependencies: ['env'] })
