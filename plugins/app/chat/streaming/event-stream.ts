import { once } from 'node:events'
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyReply } from 'fastify'

export interface EventStream {
  /** Aborts when the client goes away or the server ends the work (`signal.reason` says why). */
  readonly signal: AbortSignal
  /** Takes over the reply as `text/event-stream`; until then the route may still answer an error. */
  open (): void
  readonly opened: boolean
  /** Writes one event (opening first); resolves once the socket can take more (backpressure), or at once if closed. */
  send (data: unknown, options?: { event?: string, id?: string }): Promise<void>
  end (): void
  /** Drops the connection without a terminal event. */
  destroy (): void
  /** Ends the work behind the stream from the server side (stop, shutdown, session end). */
  abort (reason: Error): void
  /** From now on the work goes on when the client drops (a resumable send: the client may come back for the rest). */
  outliveClient (): void
}

declare module 'fastify' {
  interface FastifyInstance {
    /** An event stream for this reply, not yet open: its signal already follows the client's connection. */
    eventStream (reply: FastifyReply): EventStream
  }
}

/** The open streams, for the one timer that pings the quiet ones. */
type Pinged = Set<SseStream>

/**
 * One stream's state, its methods on the prototype: a thousand open streams share them rather
 * than each holding its own closures.
 */
class SseStream implements EventStream {
  private readonly controller = new AbortController()
  private readonly raw: ServerResponse
  private lastWrite = 0
  private outlivesClient = false
  opened = false

  constructor (private readonly reply: FastifyReply, private readonly pinged: Pinged) {
    this.raw = reply.raw
    this.raw.on('close', () => {
      pinged.delete(this)
      if (!this.raw.writableFinished && !this.outlivesClient) this.controller.abort(new Error('client disconnected'))
      // Answered without the stream (its time limit's 503): the work behind it has no one to tell.
      if (this.raw.writableFinished && !this.opened) this.controller.abort(new Error('answered without the stream'))
    })
  }

  get signal () { return this.controller.signal }

  /** Sends `: ping` when nothing was written for `quietMs`. */
  ping (now: number, quietMs: number) {
    if (now - this.lastWrite >= quietMs) this.write(': ping\n\n').catch(() => {})
  }

  private async write (chunk: string) {
    const raw = this.raw
    if (raw.destroyed || raw.writableEnded) return
    this.lastWrite = Date.now()
    if (!raw.write(chunk)) {
      await Promise.race([once(raw, 'drain', { signal: this.controller.signal }).catch(() => {}), once(raw, 'close')])
    }
  }

  open () {
    if (this.opened || this.reply.sent) return
    this.opened = true
    this.reply.hijack()
    this.raw.writeHead(200, {
      ...this.reply.getHeaders(),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive'
    } as OutgoingHttpHeaders)
    this.raw.flushHeaders()
    this.lastWrite = Date.now()
    this.pinged.add(this)
  }

  send (data: unknown, options?: { event?: string, id?: string }) {
    this.open()
    let frame = ''
    if (options?.id) frame += `id: ${options.id}\n`
    if (options?.event) frame += `event: ${options.event}\n`
    return this.write(`${frame}data: ${JSON.stringify(data)}\n\n`)
  }

  end () {
    this.pinged.delete(this)
    if (!this.raw.writableEnded) this.raw.end()
  }

  destroy () {
    this.pinged.delete(this)
    this.raw.destroy()
  }

  abort (reason: Error) {
    this.controller.abort(reason)
  }

  outliveClient () {
    this.outlivesClient = true
  }
}

/**
 * Server-sent events on the raw response. Headers set by hooks (CORS, request id, security) are
 * copied over, since hijacking skips Fastify's reply pipeline. A `: ping` comment goes out after
 * STREAM_PING_SECONDS without an event, so proxies and clients know the stream is alive.
 */
export default fp(async function eventStream (fastify) {
  const pingMs = fastify.config.STREAM_PING_SECONDS * 1000
  const open: Pinged = new Set()
  // One job for all open streams, however many there are.
  fastify.periodicJobs.add('stream pings', {
    everyMs: Math.min(pingMs, 1000),
    withoutDatabase: true,
    async task () {
      const now = Date.now()
      for (const stream of open) stream.ping(now, pingMs)
    }
  })

  fastify.decorate('eventStream', (reply: FastifyReply): EventStream => new SseStream(reply, open))
}, { name: 'event-stream', dependencies: ['env', 'periodic-jobs'] })
