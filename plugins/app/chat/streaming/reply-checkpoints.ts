import fp from 'fastify-plugin'
import type { ObjectId } from 'mongodb'
import type { Checkpoint } from './exchanges.js'

/** A streaming reply's text as it grows; `stop` once its final write is due. */
export interface TrackedReply {
  update (content: string, pieces: number): void
  stop (): void
}

export interface ReplyCheckpoints {
  track (replyId: ObjectId): TrackedReply
  /** Saves every changed reply now (tests, and the interval's own work). */
  flush (): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    replyCheckpoints: ReplyCheckpoints
  }
}

/** A tracked reply: its latest text and what was saved of it. */
class Entry implements Checkpoint, TrackedReply {
  content = ''
  pieces = 0
  saved = 0

  constructor (readonly replyId: ObjectId, private readonly tracked: Set<Entry>) {
    tracked.add(this)
  }

  update (content: string, pieces: number) {
    this.content = content
    this.pieces = pieces
  }

  stop () { this.tracked.delete(this) }
}

/**
 * Partial text of this instance's streaming replies, saved every REPLY_CHECKPOINT_SECONDS in one
 * batched write for the replies whose text changed: the database work is one write per instance
 * per interval, whatever the number of streams, and a crash loses at most one interval of text.
 * The write is guarded (exchanges.saveCheckpoints), so a batch that lands late changes nothing.
 */
export default fp(async function replyCheckpoints (fastify) {
  const { exchanges, log } = fastify
  const tracked = new Set<Entry>()

  async function save () {
    const batch = [...tracked].filter((entry) => entry.pieces > entry.saved).map((entry) => ({ entry, pieces: entry.pieces, content: entry.content }))
    if (batch.length === 0) return
    try {
      await exchanges.saveCheckpoints(batch.map(({ entry, pieces, content }) => ({ replyId: entry.replyId, pieces, content })))
      for (const { entry, pieces } of batch) entry.saved = Math.max(entry.saved, pieces)
    } catch (error) {
      log.warn({ err: { message: (error as Error).message }, replies: batch.length }, 'reply checkpoint failed; the next one tries again')
    }
  }

  // One batch at a time: a flush asked for while one is written waits for it, then writes its own.
  const job = fastify.periodicJobs.add('reply checkpoints', { everyMs: fastify.config.REPLY_CHECKPOINT_SECONDS * 1000, task: save })

  fastify.decorate('replyCheckpoints', {
    track: (replyId) => new Entry(replyId, tracked),
    flush: job.run
  } satisfies ReplyCheckpoints)
}, { name: 'reply-checkpoints', dependencies: ['env', 'exchanges', 'periodic-jobs'] })
