/** A real SMTP server on loopback that keeps every mail it accepts, parsed; and servers that misbehave. */
import { createServer, type Socket } from 'node:net'
import { simpleParser, type ParsedMail } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import type { Test } from 'tap'
import type { RawEnv } from '../../app.js'
import { until } from './until.js'

export interface ReceivedMail {
  to: string
  subject: string
  text: string
  html: string
  /** The first http(s) link of the plain-text part. */
  link: string | undefined
  /** The Message-ID header, e.g. `<id@example.com>`. */
  messageId: string | undefined
  parsed: ParsedMail
}

export interface SmtpOptions {
  /** Listen on this port (one a test first used as a closed port). */
  port?: number
  /** Answer the first `count` messages with this reply code instead of 250 (`count` Infinity: all). */
  reject?: { code: number, count: number }
  /** Never answer the first `count` messages: the sender waits after DATA until it gives up. */
  stall?: number
  /** Require a login with these credentials: wrong ones are answered 535, none 530. */
  auth?: { user: string, pass: string }
}

export interface TestSmtp {
  port: number
  mails: ReceivedMail[]
  /** Messages received after DATA, whatever the answer (accepted, rejected or stalled). */
  readonly messagesSeen: number
  /** The mail settings that point the app at this server. */
  env: RawEnv
  /** Resolves once `count` mails have arrived (or rejects after `ms`). */
  waitFor (count: number, ms?: number): Promise<ReceivedMail[]>
}

export function smtpEnv (port: number): RawEnv {
  return { MAIL_SERVER: '127.0.0.1', MAIL_PORT: String(port), MAIL_SECURE: 'false', MAIL_FROM: 'noreply@example.com' }
}

export async function startSmtp (t: Test, options: SmtpOptions = {}): Promise<TestSmtp> {
  const mails: ReceivedMail[] = []
  let messagesSeen = 0
  const server = new SMTPServer({
    authOptional: options.auth === undefined,
    allowInsecureAuth: options.auth !== undefined,
    onAuth (auth, _session, callback) {
      if (auth.username === options.auth?.user && auth.password === options.auth?.pass) callback(null, { user: auth.username })
      else callback(new Error('Invalid username or password'))
    },
    disabledCommands: ['STARTTLS'],
    logger: false,
    closeTimeout: 500,
    onData (stream, _session, callback) {
      const seen = ++messagesSeen
      simpleParser(stream).then((parsed) => {
        if (options.stall !== undefined && seen <= options.stall) return
        if (options.reject && seen <= options.reject.count) {
          callback(Object.assign(new Error('refused by the test server'), { responseCode: options.reject.code }))
          return
        }
        const text = parsed.text ?? ''
        mails.push({
          to: Array.isArray(parsed.to) ? parsed.to.map((a) => a.text).join(', ') : parsed.to?.text ?? '',
          subject: parsed.subject ?? '',
          text,
          html: typeof parsed.html === 'string' ? parsed.html : '',
          link: text.match(/https?:\/\/\S+/)?.[0],
          messageId: parsed.messageId,
          parsed
        })
        callback()
      }, callback)
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', resolve)
  })
  const port = (server.server.address() as { port: number }).port
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))

  return {
    port,
    mails,
    get messagesSeen () { return messagesSeen },
    env: smtpEnv(port),
    async waitFor (count, ms = 10_000) {
      return await until(() => mails.length >= count && mails, ms, () => `${count} mails, got ${mails.length}`, 20)
    }
  }
}

/** A port with nothing listening: connections are refused. */
export async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export interface SilentServer {
  port: number
  env: RawEnv
  /** The most connections it held open at once. */
  readonly mostOpen: number
  readonly connections: number
}

/** Accepts TCP connections and never says a word: no SMTP greeting ever comes. */
export async function startSilentServer (t: Test): Promise<SilentServer> {
  const open = new Set<Socket>()
  let mostOpen = 0
  let connections = 0
  const server = createServer((socket) => {
    connections++
    open.add(socket)
    mostOpen = Math.max(mostOpen, open.size)
    socket.on('error', () => {})
    socket.once('close', () => open.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  t.teardown(() => new Promise<void>((resolve) => {
    for (const socket of open) socket.destroy()
    server.close(() => resolve())
  }))
  return {
    port,
    env: smtpEnv(port),
    get mostOpen () { return mostOpen },
    get connections () { return connections }
  }
}
