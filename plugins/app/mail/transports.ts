import nodemailer from 'nodemailer'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../../../schemas/env.js'

/** A rendered mail, ready to hand over. */
export interface OutgoingMail {
  id: string
  to: string
  subject: string
  text: string
  html: string
  link?: string
}

/** Hands one mail over; resolves once it is accepted, rejects with the reason otherwise. */
export type Deliver = (mail: OutgoingMail, signal: AbortSignal) => Promise<void>

export interface SmtpTimeouts {
  connectionTimeout: number
  greetingTimeout: number
  socketTimeout: number
}

/** nodemailer waits minutes by default (2 min to connect, 10 min idle); a worker slot is worth more. */
export const SMTP_TIMEOUTS: SmtpTimeouts = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 }

/** One SMTP connection per mail; the Message-ID is the outbox id, so duplicates can be recognised. */
export function smtpDelivery (config: Config, timeouts: SmtpTimeouts): Deliver {
  const transport = nodemailer.createTransport({
    host: config.MAIL_SERVER,
    port: config.MAIL_PORT,
    secure: config.MAIL_SECURE ?? config.MAIL_PORT === 465,
    auth: config.MAIL_USERNAME ? { user: config.MAIL_USERNAME, pass: config.MAIL_PASSWORD ?? '' } : undefined,
    ...timeouts
  })
  const from = { name: config.MAIL_FROM_NAME, address: config.MAIL_FROM }
  const domain = config.MAIL_FROM.split('@').pop()
  return async (mail, signal) => {
    await transport.sendMail({
      from,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      messageId: `<${mail.id}@${domain}>`,
      signal
    })
  }
}

/** Without MAIL_SERVER: the mail goes to the log, link included, so a developer can follow it. */
export function logDelivery (log: FastifyBaseLogger): Deliver {
  return async (mail) => {
    log.info(`mail to ${mail.to}: "${mail.subject}"${mail.link ? ` ${mail.link}` : ''} (MAIL_SERVER unset, not sent)`)
  }
}
