import fp from 'fastify-plugin'
import { ObjectId } from 'mongodb'
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

interface LiveStream {
  stream: EventStream
  sessionId: string
  replyId: string
  done: Promise<void>
}

export interface LiveStreams {
  /** Runs a stream's work so that stops, session ends, the time limit and shutdown can end it; waits for it. */
  run (owner: { stream: EventStream, sessionId: string, replyId: string }, work: () => Promise<void>): Promise<void>
  /** Ends this instance's streams of these sessions now (other instances notice on their next check). */
  endSessions (sessionIds: Iterable<string>): void
  /** Stops these replies now if they stream here (other instances notice the stored request). */
  stopReplies (replyIds: Iterable<string>): void
  /**
   * A place for one more stream on this instance (MAX_LIVE_STREAMS), taken at once so concurrent
   * requests cannot all pass the check; null when full. Call the returned function when done.
   */
  reserve (): (() => void) | null
}

declare module 'fastify' {
  interface FastifyInstance {
    liveStreams: LiveStreams
  }
}

const CHECK_INTERVAL_MS = 1000

/**
 * The streams running on this instance. Ending a session or stopping a reply acts at once here,
 * and within a second on every other instance: each second, one query looks for revoked sessions
 * and one for stop requests among this instance's live streams, whatever their number.
 */
export default fp(async function liveStreams (fastify) {
  const live = new Set<LiveStream>()
  const maxMs = fastify.config.MAX_STREAM_SECONDS * 1000
  let reserved = 0

  function abortWhere (ids: Iterable<string>, key: 'sessionId' | 'replyId', reason: () => Error) {
    const wanted = new Set(ids)
    for (const entry of live) {
      if (wanted.has(entry[key])) entry.stream.abort(reason())
    }
  }
  const endSessions = (ids: Iterable<string>) => abortWhere(ids, 'sessionId', () => new SessionEndedError('session ended'))
  const stopReplies = (ids: Iterable<string>) => abortWhere(ids, 'replyId', () => new StopRequestedError('stop requested'))

  async function checkElsewhere () {
    const entries = [...live]
    const sessionIds = [...new Set(entries.map((entry) => entry.sessionId))]
    const replyIds = entries.map((entry) => new ObjectId(entry.replyId))
    const [ended, stopped] = await Promise.all([
      fastify.sessionsRepository.findEnded(sessionIds),
      fastify.chatsRepository.findStopRequested(replyIds)
    ])
    endSessions(ended)
    stopReplies(stopped)
  }

  let checking = false
  const timer = setInterval(() => {
    if (live.size === 0 || checking) return
    checking = true
    checkElsewhere()
      .catch((error: Error) => fastify.log.warn({ err: { message: error.message } }, 'could not check live streams for stops and ended sessions'))
      .finally(() => { checking = false })
  }, CHECK_INTERVAL_MS)
  timer.unref()

  fastify.decorate('liveStreams', {
    async run ({ stream, sessionId, replyId }, work) {
      const entry: LiveStream = { stream, sessionId, replyId, done: Promise.resolve() }
      const limit = setTimeout(() => stream.abort(new TimeLimitError('stream time limit')), maxMs)
      live.add(entry)
      entry.done = work().finally(() => {
        clearTimeout(limit)
        live.delete(entry)
      })
      await entry.done
    },
    endSessions,
    stopReplies,
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
    clearInterval(timer)
    const running = [...live]
    for (const entry of running) entry.stream.abort(new ShutdownError('server shutting down'))
    await Promise.allSettled(running.map((entry) => entry.done))
  })
}, { name: 'live-streams', dependencies: ['env', 'sessions-repository', 'chats-repository'] })
