import fp from 'fastify-plugin'
import type { EventStream } from './event-stream.js'

/** Why the server ended a stream; the stream route tells the client. */
export class ShutdownError extends Error {}
export class SessionEndedError extends Error {}

interface LiveStream {
  stream: EventStream
  sessionId: string
  done: Promise<void>
}

export interface LiveStreams {
  /** Runs a stream's work so that shutdown and session ends can stop it, and waits for it. */
  run (owner: { stream: EventStream, sessionId: string }, work: () => Promise<void>): Promise<void>
  /** Ends this instance's streams of these sessions now (other instances notice on their next check). */
  endSessions (sessionIds: string[]): void
  readonly count: number
}

declare module 'fastify' {
  interface FastifyInstance {
    liveStreams: LiveStreams
  }
}

const CHECK_INTERVAL_MS = 1000

/**
 * The streams running on this instance. Ending a session ends its streams at once here, and within
 * a second on every other instance: one query per instance per second looks for revoked sessions
 * among those with live streams, whatever the number of streams.
 */
export default fp(async function liveStreams (fastify) {
  const live = new Set<LiveStream>()

  function endSessions (sessionIds: Iterable<string>) {
    const ended = new Set(sessionIds)
    for (const entry of live) {
      if (ended.has(entry.sessionId)) entry.stream.abort(new SessionEndedError('session ended'))
    }
  }

  let checking = false
  const timer = setInterval(() => {
    if (live.size === 0 || checking) return
    checking = true
    const sessionIds = [...new Set([...live].map((entry) => entry.sessionId))]
    fastify.sessionsRepository.findEnded(sessionIds)
      .then(endSessions)
      .catch((error: Error) => fastify.log.warn({ err: { message: error.message } }, 'could not check sessions of live streams'))
      .finally(() => { checking = false })
  }, CHECK_INTERVAL_MS)
  timer.unref()

  fastify.decorate('liveStreams', {
    async run ({ stream, sessionId }, work) {
      const entry: LiveStream = { stream, sessionId, done: Promise.resolve() }
      entry.done = work().finally(() => live.delete(entry))
      live.add(entry)
      await entry.done
    },
    endSessions,
    get count () { return live.size }
  } satisfies LiveStreams)

  fastify.addHook('preClose', async () => {
    clearInterval(timer)
    const running = [...live]
    for (const entry of running) entry.stream.abort(new ShutdownError('server shutting down'))
    await Promise.allSettled(running.map((entry) => entry.done))
  })
}, { name: 'live-streams', dependencies: ['sessions-repository'] })
