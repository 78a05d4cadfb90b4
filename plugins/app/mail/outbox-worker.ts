import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import { Counter, Gauge } from 'prom-client'
import { failureCode, isLoginFailure, isPermanentFailure, retryDelayMs } from './retry-policy.js'
import { renderMail, templateSettings } from './templates.js'
import { logDelivery, SMTP_TIMEOUTS, smtpDelivery, type SmtpTimeouts } from './transports.js'
import { withTimeout } from '../../../lib/with-timeout.js'
import type { LinkPurpose } from '../auth/one-time-tokens.js'
import type { OutboxEntry } from './outbox-repository.js'

export interface MailOutboxWorker {
  /** Looks for due mail now rather than at the next poll. */
  wake (): void
}

/** Plugin options (beside the app's `env`): tests shorten the SMTP timeouts. */
export interface MailOutboxWorkerOptions {
  smtpTimeouts?: Partial<SmtpTimeouts>
}

declare module 'fastify' {
  interface FastifyInstance {
    mailOutboxWorker: MailOutboxWorker
  }
}

const POLL_INTERVAL_MS = 1000
const MAX_CONCURRENT_SENDS = 4
/** Mails without a link have no expiry; this bounds their retries (about 13 hours at the default base). */
const MAX_ATTEMPTS = 20
/** At shutdown, sends still running after this are cut off and handed back. */
const CLOSE_WAIT_MS = 5000

type Outcome =
  | { status: 'sent' }
  | { status: 'failed' | 'abandoned' | 'skipped', reason: string, error: string | null }
  | { status: 'pending', at: Date, error: string | null, loginRefused?: boolean }

/**
 * Sends what the outbox holds: claims due entries one at a time with a lease, up to a few sends at
 * once, polling every second and woken at once by a local send. Several instances can share the
 * outbox. At shutdown it stops claiming, lets running sends finish briefly, and hands the rest back.
 */
export default fp(async function mailOutboxWorker (fastify, opts: MailOutboxWorkerOptions) {
  const { config, mailOutboxRepository: outbox, linkMails, securityEvents } = fastify
  const settings = templateSettings(config)
  const log = fastify.log.child({ component: 'mail-outbox' })
  const owner = randomUUID()
  const leaseMs = config.MAIL_LEASE_SECONDS * 1000
  // A send never outlives its lease, or another instance could take the mail over mid-send.
  const sendLimitMs = Math.floor(leaseMs * 0.8)
  const deliver = config.MAIL_SERVER
    ? smtpDelivery(config, { ...SMTP_TIMEOUTS, ...opts.smtpTimeouts })
    : logDelivery(fastify.log.child({ component: 'mailer' }))
  if (!config.MAIL_SERVER && config.NODE_ENV === 'production') log.warn('MAIL_SERVER is unset: mails are written to the log, not sent')

  const outcomes = new Counter({ name: 'mail_attempts_total', help: 'Mail attempts of this instance by outcome (pending: retried later)', labelNames: ['status'] as const, registers: [fastify.metrics] })
  fastify.metrics.registerMetric(new Gauge({
    name: 'mail_outbox_entries',
    help: 'Outbox entries not sent yet, across all instances',
    labelNames: ['status'] as const,
    registers: [],
    async collect () {
      const { pending, sending } = await outbox.countUnsent()
      this.set({ status: 'pending' }, pending)
      this.set({ status: 'sending' }, sending)
    }
  }))
  const cutOff = new AbortController()
  const sends = new Set<Promise<void>>()
  let databaseFailing = false

  /** Claims due entries while a send is free; a wake-up during a pass makes one more pass after it. */
  async function claimAll (closing: AbortSignal) {
    while (sends.size < MAX_CONCURRENT_SENDS && !closing.aborted) {
      const entry = await claimOne()
      if (!entry) break
      const send = handle(entry).finally(() => {
        sends.delete(send)
        wake()
      })
      sends.add(send)
    }
  }

  const poll = fastify.periodicJobs.add('mail outbox poll', { everyMs: POLL_INTERVAL_MS, task: claimAll })
  const wake = () => { poll.run().catch(() => {}) }

  async function claimOne () {
    try {
      const entry = await outbox.claim(owner, leaseMs)
      databaseFailing = false
      return entry
    } catch (error) {
      if (!databaseFailing) log.warn({ err: { message: (error as Error).message } }, 'mail outbox unreachable; polling on')
      databaseFailing = true
      return null
    }
  }

  async function handle (entry: OutboxEntry) {
    const outcome = await attempt(entry)
    const mailId = entry._id.toHexString()
    try {
      if (outcome.status === 'pending') await outbox.reschedule(entry, outcome.at, outcome.error)
      else await outbox.finish(entry, outcome.status, outcome.status === 'sent' ? null : outcome.error)
    } catch (error) {
      // The lease runs out and the mail is tried again: sent twice at worst, never lost.
      log.warn({ mail_id: mailId, err: { message: (error as Error).message } }, 'could not record a mail attempt')
      return
    }
    outcomes.inc({ status: outcome.status })
    if (outcome.status === 'sent') log.debug({ mail_id: mailId, attempts: entry.attempts }, 'mail sent')
    else if (outcome.status === 'pending') {
      const fields = { mail_id: mailId, attempts: entry.attempts, error: outcome.error }
      // Nothing sends until someone fixes the settings: loud on every attempt, as a failed mail is.
      if (outcome.loginRefused) log.error(fields, 'the mail server refused our login (check MAIL_USERNAME and MAIL_PASSWORD); will retry')
      else log.warn(fields, 'mail not sent yet; will retry')
    } else if (outcome.status === 'skipped') log.debug({ mail_id: mailId }, `mail skipped: ${outcome.reason}`)
    else log.error({ mail_id: mailId, status: outcome.status, error: outcome.error }, `mail ${outcome.status}: ${outcome.reason}`)
  }

  /** The entry ready to send: a composed mail gets its account's link now; null when no account needs it. */
  async function compose (entry: OutboxEntry): Promise<OutboxEntry | null> {
    if (!entry.compose) return entry
    const found = await linkMails.compose(entry.to, entry.kind as LinkPurpose)
    if (!found) return null
    const body = renderMail(found.mail, settings)
    await outbox.setBody(entry, body)
    // Here, not in the request: only here is it known that the address has an account.
    if (entry.kind === 'reset-password') await securityEvents.record(found.userId, 'password_reset_requested')
    const event = entry.kind === 'reset-password' ? 'password reset requested' : 'verification mail requested'
    log.info({ request_id: entry.request_id, user_id: found.userId.toHexString(), mail_id: entry._id.toHexString() }, event)
    return { ...entry, ...body }
  }

  async function attempt (entry: OutboxEntry): Promise<Outcome> {
    if (entry.expires_at !== null && entry.expires_at <= new Date()) {
      return { status: 'abandoned', reason: 'its link expired before it could be sent', error: entry.last_error }
    }
    let ready: OutboxEntry | null
    try {
      ready = await compose(entry)
    } catch (error) {
      return { status: 'pending', at: new Date(Date.now() + retryDelayMs(entry.attempts, config.MAIL_RETRY_BASE_SECONDS)), error: failureCode(error) }
    }
    if (!ready) return { status: 'skipped', reason: 'no account needs it', error: null }
    const mail = { id: ready._id.toHexString(), to: ready.to, subject: ready.subject, text: ready.text ?? '', html: ready.html ?? '', link: ready.link }
    try {
      await deliver(mail, AbortSignal.any([cutOff.signal, AbortSignal.timeout(sendLimitMs)]))
      return { status: 'sent' }
    } catch (error) {
      if (cutOff.signal.aborted) return { status: 'pending', at: new Date(), error: entry.last_error }
      const code = failureCode(error)
      if (isPermanentFailure(error)) return { status: 'failed', reason: 'the mail server refused it', error: code }
      if (entry.attempts >= MAX_ATTEMPTS) return { status: 'abandoned', reason: `still not sent after ${entry.attempts} attempts`, error: code }
      const at = new Date(Date.now() + retryDelayMs(entry.attempts, config.MAIL_RETRY_BASE_SECONDS))
      return { status: 'pending', at, error: code, loginRefused: isLoginFailure(error) }
    }
  }

  fastify.decorate('mailOutboxWorker', { wake } satisfies MailOutboxWorker)

  // The poll has stopped (preClose). onClose hooks run in reverse order of registration: this one
  // ends before the database client closes.
  fastify.addHook('onClose', async () => {
    await withTimeout(Promise.allSettled(sends), CLOSE_WAIT_MS).catch(() => {})
    cutOff.abort()
    await Promise.allSettled(sends)
  })
}, { name: 'mail-outbox-worker', dependencies: ['env', 'periodic-jobs', 'mail-outbox-repository', 'link-mails', 'metrics', 'security-events'] })
