import fp from 'fastify-plugin'
import type { StoredReply } from './exchanges.js'
import type { RunningReply } from './live-streams.js'
import { FOLLOW_LEASE_MS } from './reply-checkpoints.js'

/** One follower of a reply: a replay, or a resumed stream. */
export interface ReplyFollower {
  /**
   * The reply once it differs from `known` (more text, or no longer streaming); `known` itself if
   * `signal` aborts first; null once the reply is gone (its chat deleted).
   */
  next (known: StoredReply, signal: AbortSignal): Promise<StoredReply | null>
  close (): void
}

export interface ReplyWatch {
  follow (reply: StoredReply): ReplyFollower
}

declare module 'fastify' {
  interface FastifyInstance {
    replyWatch: ReplyWatch
  }
}

/** How often the replies followed here and written elsewhere are read, in one batch. */
export const FOLLOW_POLL_MS = 200

interface Waiter {
  known: StoredReply
  resolve (reply: StoredReply | null): void
}

interface Watched {
  reply: StoredReply
  latest: StoredReply | null
  followers: number
  waiters: Set<Waiter>
  askedAt: number
}

const newer = (latest: StoredReply, known: StoredReply) => latest.status !== known.status || latest.content.length > known.content.length

/** `promise`'s value, or `fallback` once `signal` aborts, leaving no listener behind. */
function orOnAbort<T> (promise: Promise<T>, signal: AbortSignal, fallback: T): Promise<T> {
  if (signal.aborted) return Promise.resolve(fallback)
  return new Promise<T>((resolve) => {
    const onAbort = () => resolve(fallback)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then((value) => {
      signal.removeEventListener('abort', onAbort)
      resolve(value)
    }, () => {})
  })
}

/**
 * Followers of a reply learn of its changes here. A reply streaming on this instance is read from
 * memory, piece by piece (replyCheckpoints.live). One written elsewhere is read from the database:
 * one batched read every FOLLOW_POLL_MS for all the replies followed here, however many followers
 * each has, while the instance writing it is asked (a `follow` signal, renewed within its lease) to
 * save it every 200 ms rather than every REPLY_CHECKPOINT_SECONDS. No Redis: the database and the
 * heartbeat's signals are enough.
 */
export default fp(async function replyWatch (fastify) {
  const { exchanges, liveStreams, replyCheckpoints } = fastify
  const watched = new Map<string, Watched>()

  fastify.periodicJobs.add('followed replies', {
    everyMs: FOLLOW_POLL_MS,
    async task () {
      const remote = [...watched].filter(([key]) => !replyCheckpoints.live(key))
      if (remote.length === 0) return
      const found = new Map((await exchanges.findReplies(remote.map(([, w]) => w.reply.replyId))).map((r) => [r.replyId.toHexString(), r]))
      const now = Date.now()
      const ask: RunningReply[] = []
      for (const [key, w] of remote) {
        const latest = found.get(key) ?? null
        w.latest = latest
        for (const waiter of w.waiters) {
          if (latest !== null && !newer(latest, waiter.known)) continue
          w.waiters.delete(waiter)
          waiter.resolve(latest)
        }
        if (latest?.status === 'streaming' && latest.instance && now - w.askedAt >= FOLLOW_LEASE_MS / 2) {
          w.askedAt = now
          ask.push({ replyId: key, instance: latest.instance })
        }
      }
      if (ask.length > 0) await liveStreams.followReplies(ask)
    }
  })

  fastify.decorate('replyWatch', {
    follow (reply) {
      const key = reply.replyId.toHexString()
      let w = watched.get(key)
      if (!w) {
        w = { reply, latest: reply, followers: 0, waiters: new Set(), askedAt: 0 }
        watched.set(key, w)
      }
      w.followers++
      const entry = w
      let closed = false
      return {
        async next (known, signal) {
          const live = replyCheckpoints.live(key)
          if (live) {
            if (live.content.length <= known.content.length && !live.ended) await orOnAbort(live.changed(), signal, undefined)
            return live.content.length > known.content.length ? { ...known, content: live.content } : known
          }
          if (entry.latest === null || newer(entry.latest, known)) return entry.latest
          return await orOnAbort(new Promise<StoredReply | null>((resolve) => { entry.waiters.add({ known, resolve }) }), signal, known)
        },
        close () {
          if (closed) return
          closed = true
          if (--entry.followers === 0) watched.delete(key)
        }
      }
    }
  } satisfies ReplyWatch)
}, { name: 'reply-watch', dependencies: ['exchanges', 'live-streams', 'reply-checkpoints', 'periodic-jobs'] })
