import fp from 'fastify-plugin'
import { Gauge } from 'prom-client'
import { ObjectId, type Collection } from 'mongodb'
import type { EventStream } from './event-stream.js'

/** Why the server ended a stream; the stream tells the client (a stop needs no explanation). */
export class ShutdownError extends Error {}
export class SessionEndedError extends Error {}
export class StopRequestedError extends Error {}
export class TimeLimitError extends Error {}

/** What the client is told when the server ended its stream, if anything. */
export function endNotice (reason: unknown): string | undefined {
  if (reason instanceof SessionEndedError) return 'Session ended'
  if (reason instanceof ShutdownError) return 'The server is restarting; the reply so far was saved'
  if (reason instanceof TimeLimitError) return 'The reply took too long and was stopped'
  return undefined
}

export interface LiveStreamOwner {
  stream: EventStream
  sessionId: string
  replyId: string
}

export interface RunningReply {
  replyId: string
  instance: string
}

export interface LiveStreams {
  /** Runs a stream's work so that stops, session ends, the time limit and shutdown can end it; waits for it. */
  run (owner: LiveStreamOwner, work: () => Promise<void>): Promise<void>
  /** Whether the reply streams on this instance. */
  has (replyId: string): boolean
  /** Stops these replies: here at once, on other instances within a second. */
  stopReplies (replies: RunningReply[]): Promise<void>
  /** Asks the instances streaming these replies to save them often (replyCheckpoints.follow): they are followed from here. */
  followReplies (replies: RunningReply[]): Promise<void>
  /**
   * A place for one more stream on this instance (MAX_LIVE_STREAMS), taken at once so concurrent
   * requests cannot all pass the check; null when full. Call the returned function when done.
   */
  reserve (): (() => void) | null
  /** Drops the signals addressed to an instance that stopped. */
  dropSignalsOf (instanceId: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    liveStreams: LiveStreams
  }
}

interface SignalDocument {
  _id: ObjectId
  /** The instance that should act. */
  instance: string
  kind: 'stop' | 'session-ended' | 'follow'
  /** The reply to stop or follow, or the session whose streams end. */
  target: string
}

/** A signal for a stream not (yet) running here is kept this long: the stream may be starting. */
const SIGNAL_KEEP_MS = 10_000

/**
 * The streams running on this instance. Stops and session ends act at once here; for a stream on
 * another instance they become a signal document addressed to it, which that instance reads with
 * its heartbeat (one indexed query a second while it streams, whatever the number of streams).
 */
export default fp(async function liveStreams (fastify) {
  const { instance, replyCheckpoints, streamSlots, log } = fastify
  const signals: Collection<SignalDocument> = fastify.mongo.db!.collection('stream_signals')
  fastify.databaseSetup.add('stream signals index', async () => { await signals.createIndex({ instance: 1 }, { name: 'by_instance' }) })
  const live = new Map<string, LiveStreamOwner & { done: Promise<void> }>()
  fastify.metrics.registerMetric(new Gauge({ name: 'chat_streams_open', help: 'Streams open on this instance: replies streaming here, and their followers (resumed streams, replays)', registers: [], collect () { this.set(live.size) } }))
  const maxMs = fastify.config.MAX_STREAM_SECONDS * 1000
  let reserved = 0

  const stopHere = (replyId: string) => live.get(replyId)?.stream.abort(new StopRequestedError('stop requested'))
  function endHere (sessionIds: Set<string>) {
    for (const entry of live.values()) {
      if (sessionIds.has(entry.sessionId)) entry.stream.abort(new SessionEndedError('session ended'))
    }
  }

  async function signal (documents: Array<Omit<SignalDocument, '_id'>>) {
    if (documents.length > 0) await signals.insertMany(documents.map((d) => ({ ...d, _id: new ObjectId() })))
  }

  instance.onBeat(async () => {
    if (live.size === 0) return
    const received = await signals.find({ instance: instance.id }).toArray()
    if (received.length === 0) return
    const done: ObjectId[] = []
    const ended = new Set<string>()
    for (const s of received) {
      if (s.kind === 'session-ended') ended.add(s.target)
      else if (s.kind === 'follow') replyCheckpoints.follow(s.target)
      else stopHere(s.target)
      if (s.kind === 'session-ended' || live.has(s.target) || Date.now() - s._id.getTimestamp().getTime() > SIGNAL_KEEP_MS) done.push(s._id)
    }
    endHere(ended)
    if (done.length > 0) await signals.deleteMany({ instance: instance.id, _id: { $in: done } })
  })

  // Ended sessions' streams end: here at once, on other instances within a second.
  fastify.sessionEnding.onEnd(async (userId, sessionIds) => {
    const ended = new Set(sessionIds)
    endHere(ended)
    try {
      const elsewhere = (await streamSlots.held(userId)).filter((slot) => slot.instance !== instance.id && ended.has(slot.sessionId))
      await signal(elsewhere.map((slot) => ({ instance: slot.instance, kind: 'session-ended', target: slot.sessionId })))
    } catch (error) {
      log.warn({ err: { message: (error as Error).message } }, 'could not tell other instances to end these sessions\' streams')
    }
  })

  fastify.decorate('liveStreams', {
    run (owner, work) {
      const limit = setTimeout(() => owner.stream.abort(new TimeLimitError('stream time limit')), maxMs)
      const entry = { ...owner, done: Promise.resolve() }
      live.set(owner.replyId, entry)
      entry.done = work().finally(() => {
        clearTimeout(limit)
        live.delete(owner.replyId)
      })
      return entry.done
    },
    has: (replyId) => live.has(replyId),
    async stopReplies (replies) {
      for (const { replyId } of replies) stopHere(replyId)
      await signal(replies.filter((r) => r.instance !== instance.id).map((r) => ({ instance: r.instance, kind: 'stop', target: r.replyId })))
    },
    async followReplies (replies) {
      await signal(replies.filter((r) => r.instance !== instance.id).map((r) => ({ instance: r.instance, kind: 'follow', target: r.replyId })))
    },
    async dropSignalsOf (instanceId) {
      await signals.deleteMany({ instance: instanceId })
    },
    reserve () {
      if (reserved >= fastify.config.MAX_LIVE_STREAMS) return null
      reserved++
      let released = false
      return () => {
        if (!released) reserved--
        released = true
      }
    }
  } satisfies LiveStreams)

  fastify.addHook('preClose', async () => {
    const running = [...live.values()]
    for (const entry of running) entry.stream.abort(new ShutdownError('server shutting down'))
    await Promise.allSettled(running.map((entry) => entry.done))
  })
}, { name: 'live-streams', dependencies: ['env', 'mongodb', 'database-setup', 'instance', 'reply-checkpoints', 'stream-slots', 'session-ending', 'metrics'] })
