import { once } from 'node:events'
import type { OutgoingHttpHeaders } from 'node:http'
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
}

declare module 'fastify' {
  interface FastifyInstance {
    /** An event stream for this reply, not yet open: its signal already follows the client's connection. */
    eventStream (reply: FastifyReply): EventStream
  }
}

/**
 * Server-sent events on the raw response. Headers set by hooks (CORS, request id, security) are
 * copied over, since hijacking skips Fastify's reply pipeline. A `: ping` comment goes out after
 * STREAM_PING_SECONDS without an event, so proxies and clients know the stream is alive.
 */
export default fp(async function eventStream (fastify) {
  const pingMs = fastify.config.STREAM_PING_SECONDS * 1000
  /** Open streams' ping checks: one timer for all of them, however many there are. */
  const pingChecks = new Set<() => void>()
  const pinger = setInterval(() => { for (const check of pingChecks) check() }, Math.min(pingMs, 1000))
  pinger.unref()
  fastify.addHook('onClose', async () => { clearInterval(pinger) })

  fastify.decorate('eventStream', function (reply: FastifyReply): EventStream {
    const controller = new AbortController()
    const raw = reply.raw
    let opened = false
    let lastWrite = 0
    const pingCheck = () => {
      if (Date.now() - lastWrite >= pingMs) write(': ping\n\n').catch(() => {})
    }

    raw.on('close', () => {
      pingChecks.delete(pingCheck)
      if (!raw.writableFinished) controller.abort(new Error('client disconnected'))
    })

    async function write (chunk: string) {
      if (raw.destroyed || raw.writableEnded) return
      lastWrite = Date.now()
      if (!raw.write(chunk)) {
        await Promise.race([once(raw, 'drain', { signal: controller.signal }).catch(() => {}), once(raw, 'close')])
      }
    }

    function open () {
      if (opened) return
      opened = true
      reply.hijack()
      raw.writeHead(200, {
        ...reply.getHeaders(),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive'
      } as OutgoingHttpHeaders)
      raw.flushHeaders()
      lastWrite = Date.now()
      pingChecks.add(pingCheck)
    }

    return {
      signal: controller.signal,
      open,
      get opened () { return opened },
      send (data, options) {
        open()
        let frame = ''
        if (options?.id) frame += `id: ${options.id}\n`
        if (options?.event) frame += `event: ${options.event}\n`
        return write(`${frame}data: ${JSON.stringify(data)}\n\n`)
      },
      end () {
        pingChecks.delete(pingCheck)
        if (!raw.writableEnded) raw.end()
      },
      destroy () {
        pingChecks.delete(pingCheck)
        raw.destroy()
      },
      abort: (reason) => controller.abort(reason)
    }
  })
}, { name: 'event-stream', dependencies: ['env'] })
