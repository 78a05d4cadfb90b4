import fp from 'fastify-plugin'
import type { ObjectId } from 'mongodb'
import type { Checkpoint } from './exchanges.js'

/** A streaming reply's text as it grows; `stop` once its final write is due. */
export interface TrackedReply {
  update (content: string, pieces: number): void
  /**
   * No more saves; resolves once a save of it in flight has landed. The final write waits for it:
   * FerretDB 1.x writes a filtered update's whole document back, so a checkpoint racing the final
   * write could put the reply back to `streaming`.
   */
  stop (): Promise<void>
}

/** A reply streaming on this instance, as a follower reads it. */
export interface LiveText {
  /** The text so far; all of it once `ended`. */
  readonly content: string
  /** The relay has all the text and is storing it (its status comes with that write). */
  readonly ended: boolean
  /** Resolves at the next piece or at the end. */
  changed (): Promise<void>
}

export interface ReplyCheckpoints {
  track (replyId: ObjectId): TrackedReply
  /** The reply's live text when it streams on this instance. */
  live (replyId: string): LiveText | undefined
  /** Saves the reply every FOLLOWED_SAVE_MS for the next FOLLOW_LEASE_MS: a follower elsewhere reads it. */
  follow (replyId: string): void
  /** Saves every changed reply now (tests, and the interval's own work). */
  flush (): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    replyCheckpoints: ReplyCheckpoints
  }
}

/** How often the replies followed from another instance are saved (when they changed). */
export const FOLLOWED_SAVE_MS = 200
/** A follow lasts this long unless renewed; followers renew it at half of it. */
export const FOLLOW_LEASE_MS = 10_000

/** A tracked reply: its latest text, what was saved of it, and who waits for more. */
class Entry implements Checkpoint, TrackedReply, LiveText {
  content = ''
  pieces = 0
  saved = 0
  ended = false
  followedUntil = 0
  /** The save this entry is part of, while it is written. */
  saving: Promise<unknown> | null = null
  private waiting: Array<() => void> | null = null

  constructor (readonly replyId: ObjectId, private readonly key: string, private readonly tracked: Map<string, Entry>) {
    tracked.set(key, this)
  }

  update (content: string, pieces: number) {
    this.content = content
    this.pieces = pieces
    this.wake()
  }

  async stop () {
    this.tracked.delete(this.key)
    this.ended = true
    this.wake()
    await this.saving
  }

  changed () {
    if (this.ended) return Promise.resolve()
    return new Promise<void>((resolve) => { (this.waiting ??= []).push(resolve) })
  }

  private wake () {
    if (this.waiting === null) return
    const waiting = this.waiting
    this.waiting = null
    for (const resolve of waiting) resolve()
  }
}

/**
 * Partial text of this instance's streaming replies, saved every REPLY_CHECKPOINT_SECONDS in one
 * batched write for the replies whose text changed: the database work is one write per instance
 * per interval, whatever the number of streams, and a crash loses at most one interval of text.
 * The write is guarded (exchanges.saveCheckpoints), so a batch that lands late changes nothing.
 * A follower here reads the text from memory; one elsewhere reads the saves, made more often for
 * the replies it follows.
 */
export default fp(async function replyCheckpoints (fastify) {
  const { exchanges, log } = fastify
  const tracked = new Map<string, Entry>()
  const followed = new Set<Entry>()

  async function save (entries: Iterable<Entry>) {
    const batch = [...entries].filter((entry) => entry.pieces > entry.saved)
      .map((entry) => ({ entry, pieces: entry.pieces, content: entry.content }))
    if (batch.length === 0) return
    const saving = exchanges.saveCheckpoints(batch.map(({ entry, pieces, content }) => ({ replyId: entry.replyId, pieces, content })))
    const landed = saving.catch(() => {})
    // An entry may be in two saves at once (the regular one and its followers'): stop waits for both.
    for (const { entry } of batch) {
      const both: Promise<unknown> = entry.saving ? Promise.all([entry.saving, landed]) : landed
      entry.saving = both
      both.then(() => { if (entry.saving === both) entry.saving = null }, () => {})
    }
    try {
      await saving
      for (const { entry, pieces } of batch) entry.saved = Math.max(entry.saved, pieces)
    } catch (error) {
      log.warn({ err: { message: (error as Error).message }, replies: batch.length }, 'reply checkpoint failed; the next one tries again')
    }
  }

  // One batch at a time: a flush asked for while one is written waits for it, then writes its own.
  const job = fastify.periodicJobs.add('reply checkpoints', { everyMs: fastify.config.REPLY_CHECKPOINT_SECONDS * 1000, task: () => save(tracked.values()) })
  fastify.periodicJobs.add('followed reply checkpoints', {
    everyMs: FOLLOWED_SAVE_MS,
    task: async () => {
      const now = Date.now()
      for (const entry of followed) if (entry.ended || entry.followedUntil <= now) followed.delete(entry)
      await save(followed)
    }
  })

  fastify.decorate('replyCheckpoints', {
    track: (replyId) => new Entry(replyId, replyId.toHexString(), tracked),
    live: (replyId) => tracked.get(replyId),
    follow (replyId) {
      const entry = tracked.get(replyId)
      if (!entry) return
      entry.followedUntil = Date.now() + FOLLOW_LEASE_MS
      followed.add(entry)
    },
    flush: job.run
  } satisfies ReplyCheckpoints)
}, { name: 'reply-checkpoints', dependencies: ['env', 'exchanges', 'periodic-jobs'] })
