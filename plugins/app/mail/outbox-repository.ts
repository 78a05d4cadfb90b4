import type { Collection, ObjectId, UpdateFilter } from 'mongodb'
import { isDuplicateKey } from '../../../lib/database-errors.js'
import type { Mail, RenderedMail } from './templates.js'
import { repositoryPlugin } from '../platform/repository-plugin.js'

/** `skipped`: a mail asked for anonymously that no account needed (unknown or already verified address). */
export type MailStatus = 'pending' | 'sending' | 'sent' | 'failed' | 'abandoned' | 'skipped'
export type FinalStatus = Extract<MailStatus, 'sent' | 'failed' | 'abandoned' | 'skipped'>

export interface OutboxEntry {
  _id: ObjectId
  to: string
  kind: Mail['kind']
  subject: string
  /** The bodies and the link they carry: dropped once the entry is finished. */
  text?: string
  html?: string
  link?: string
  /**
   * Asked for anonymously (forgot-password, resend-verification): the worker looks up the account
   * and issues the link when it sends, so the request does the same work for every address.
   */
  compose?: true
  /** The request that asked for a composed mail, for its log line. */
  request_id?: string
  status: MailStatus
  attempts: number
  created_at: Date
  next_attempt_at: Date
  last_attempt_at: Date | null
  /** When the link inside dies (the mail is abandoned after that); null for mails without a link. */
  expires_at: Date | null
  lease_until: Date | null
  lease_owner: string | null
  /** The SMTP reply code or network error code of the last failed attempt. */
  last_error: string | null
  finished_at: Date | null
}

export type NewMail = Pick<OutboxEntry, 'to' | 'kind' | 'subject' | 'text' | 'html' | 'link' | 'expires_at' | 'compose' | 'request_id'>

/**
 * One attempt at one entry, keyed by entry id and attempt number. FerretDB 1.x applies
 * findAndModify as a read then an unconditional write, so two instances can take the same attempt:
 * the unique key lets one of them go on. The outcome, written by that one alone, also exposes a late
 * write that reopened the entry after it was finished (see `claim`).
 */
interface ClaimDocument {
  _id: string
  owner: string
  claimed_at: Date
  outcome: MailStatus | null
}

const isFinal = (status: MailStatus | null | undefined): status is FinalStatus =>
  status === 'sent' || status === 'failed' || status === 'abandoned' || status === 'skipped'

const claimId = (entry: OutboxEntry, attempt = entry.attempts) => `${entry._id.toHexString()}:${attempt}`

/** Matches the entry only while this attempt still holds it (a later claim counts a new attempt). */
const heldBy = (entry: OutboxEntry) => ({ _id: entry._id, status: 'sending' as const, attempts: entry.attempts })

/**
 * The mail outbox: requests record mails here, workers claim them with a lease, send, and record
 * the outcome. Every entry ends `sent`, `failed`, `abandoned` or `skipped`.
 */
export function createMailOutboxRepository (outbox: Collection<OutboxEntry>, claims: Collection<ClaimDocument>) {
  /**
   * The next due entry, leased to `owner`: a pending one, else one whose lease ran out. Each query
   * filters on one status by equality, so it reads only the few entries in that state (FerretDB
   * pushes equality down to its index), never the finished ones, however many there are.
   */
  async function takeDue (owner: string, leaseMs: number) {
    const now = new Date()
    const lease = {
      $set: { status: 'sending' as const, lease_until: new Date(now.getTime() + leaseMs), lease_owner: owner, last_attempt_at: now },
      $inc: { attempts: 1 }
    }
    // No projection: FerretDB 1.x refuses one on findAndModify.
    return await outbox.findOneAndUpdate({ status: 'pending', next_attempt_at: { $lte: now } }, lease, { sort: { next_attempt_at: 1 }, returnDocument: 'after' }) ??
      await outbox.findOneAndUpdate({ status: 'sending', lease_until: { $lte: now } }, lease, { sort: { lease_until: 1 }, returnDocument: 'after' })
  }

  async function recordClaim (entry: OutboxEntry, owner: string): Promise<boolean> {
    try {
      await claims.insertOne({ _id: claimId(entry), owner, claimed_at: new Date(), outcome: null })
      return true
    } catch (error) {
      if (isDuplicateKey(error)) return false
      throw error
    }
  }

  async function settle (entry: OutboxEntry, outcome: MailStatus, update: UpdateFilter<OutboxEntry>) {
    await outbox.updateOne(heldBy(entry), update)
    await claims.updateOne({ _id: claimId(entry) }, { $set: { outcome } })
  }

  /** Records the outcome and drops the bodies, whose links must not outlive their use. */
  async function finish (entry: OutboxEntry, status: FinalStatus, lastError: string | null = null) {
    await settle(entry, status, {
      $set: { status, finished_at: new Date(), lease_until: null, lease_owner: null, last_error: lastError },
      $unset: { text: '', html: '', link: '' }
    })
  }

  return {
    async ensureIndexes () {
      await outbox.createIndex({ status: 1, next_attempt_at: 1 }, { name: 'due' })
      await outbox.createIndex({ to: 1 }, { name: 'recipient' })
    },

    async add (mail: NewMail): Promise<ObjectId> {
      const now = new Date()
      const { insertedId } = await outbox.insertOne({
        ...mail,
        status: 'pending',
        attempts: 0,
        created_at: now,
        next_attempt_at: now,
        last_attempt_at: null,
        lease_until: null,
        lease_owner: null,
        last_error: null,
        finished_at: null
      } as OutboxEntry)
      return insertedId
    },

    /** Leases the entry due longest ago (pending, or sending under an expired lease) for one attempt. */
    async claim (owner: string, leaseMs: number): Promise<OutboxEntry | null> {
      for (;;) {
        const entry = await takeDue(owner, leaseMs)
        if (!entry) return null
        if (!await recordClaim(entry, owner)) continue // another instance has this attempt
        const previous = entry.attempts > 1 ? await claims.findOne({ _id: claimId(entry, entry.attempts - 1) }) : null
        if (isFinal(previous?.outcome)) { // finished already, reopened by a late write (FerretDB)
          await finish(entry, previous.outcome, entry.last_error)
          continue
        }
        return entry
      }
    },

    finish,

    /** Stores the bodies of a composed mail, so a retry sends the same link. */
    async setBody (entry: OutboxEntry, body: RenderedMail) {
      await outbox.updateOne(heldBy(entry), { $set: { ...body }, $unset: { compose: '' } })
    },

    /** Back to pending for another attempt at `at` (now, when handed back at shutdown). */
    async reschedule (entry: OutboxEntry, at: Date, lastError: string | null) {
      await settle(entry, 'pending', {
        $set: { status: 'pending', next_attempt_at: at, lease_until: null, lease_owner: null, last_error: lastError }
      })
    },

    /** How many entries wait to be sent and are being sent (by equality on the indexed status). */
    async countUnsent () {
      const [pending, sending] = await Promise.all([outbox.countDocuments({ status: 'pending' }), outbox.countDocuments({ status: 'sending' })])
      return { pending, sending }
    },

    /** Removes the mails to this address not sent yet (an account being deleted). */
    async deleteUnsent (to: string) {
      await outbox.deleteMany({ to, status: { $in: ['pending', 'sending'] } })
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    mailOutboxRepository: ReturnType<typeof createMailOutboxRepository>
  }
}

export default repositoryPlugin('mailOutboxRepository', (db) =>
  createMailOutboxRepository(db.collection<OutboxEntry>('mail_outbox'), db.collection<ClaimDocument>('mail_outbox_claims')))
