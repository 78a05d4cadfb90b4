/** A real SMTP server on loopback that keeps every mail it accepts, parsed. */
import { simpleParser, type ParsedMail } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import type { Test } from 'tap'
import type { RawEnv } from '../app.js'

export interface ReceivedMail {
  to: string
  subject: string
  text: string
  html: string
  /** The first http(s) link of the plain-text part. */
  link: string | undefined
  parsed: ParsedMail
}

export interface TestSmtp {
  port: number
  mails: ReceivedMail[]
  /** The mail settings that point the app at this server. */
  env: RawEnv
  /** Resolves once `count` mails have arrived (or rejects after `ms`). */
  waitFor (count: number, ms?: number): Promise<ReceivedMail[]>
}

export async function startSmtp (t: Test): Promise<TestSmtp> {
  const mails: ReceivedMail[] = []
  const waiters: Array<() => void> = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData (stream, _session, callback) {
      simpleParser(stream).then((parsed) => {
        const text = parsed.text ?? ''
        mails.push({
          to: Array.isArray(parsed.to) ? parsed.to.map((a) => a.text).join(', ') : parsed.to?.text ?? '',
          subject: parsed.subject ?? '',
          text,
          html: typeof parsed.html === 'string' ? parsed.html : '',
          link: text.match(/https?:\/\/\S+/)?.[0],
          parsed
        })
        for (const wake of waiters.splice(0)) wake()
        callback()
      }, callback)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.server.address() as { port: number }).port
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))

  return {
    port,
    mails,
    env: { MAIL_SERVER: '127.0.0.1', MAIL_PORT: String(port), MAIL_SECURE: 'false', MAIL_FROM: 'noreply@example.com' },
    async waitFor (count, ms = 10_000) {
      const deadline = Date.now() + ms
      while (mails.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} mails, got ${mails.length}`)
        await new Promise<void>((resolve) => {
          waiters.push(resolve)
          setTimeout(resolve, 100)
        })
      }
      return mails
    }
  }
}
