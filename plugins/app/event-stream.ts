import { once } from 'node:events'
import type { OutgoingHttpHeaders } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'

export interface EventStream {
  /** Aborts when the client goes away or the server shuts down (`signal.reason` says which). */
  readonly signal: AbortSignal
  /** Writes one event; resolves once the socket can take more (backpressure), or at once if closed. */
  send (data: unknown, options?: { event?: string, id?: string }): Promise<void>
  comment (text: string): Promise<void>
  end (): void
  /** Ends the work behind the stream from the server side (e.g. shutdown). */
  abort (reason: Error): void
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Takes over the reply as `text/event-stream`. Call after every check that can answer an error. */
    openEventStream (request: FastifyRequest, reply: FastifyReply): EventStream
  }
}

/**
 * Server-sent events on the raw response. Headers set by hooks (CORS, request id, security) are
 * copied over, since hijacking skips Fastify's reply pipeline.
 */
export default fp(async function eventStream (fastify) {
  fastify.decorate('openEventStream', function (request: FastifyRequest, reply: FastifyReply): EventStream {
    const controller = new AbortController()
    const raw = reply.raw
    reply.hijack()
    raw.writeHead(200, {
      ...reply.getHeaders(),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive'
    } as OutgoingHttpHeaders)
    raw.flushHeaders()
    raw.on('close', () => {
      if (!raw.writableFinished) controller.abort(new Error('client disconnected'))
    })

    async function write (chunk: string) {
      if (raw.destroyed || raw.writableEnded) return
      if (!raw.write(chunk)) {
        await Promise.race([once(raw, 'drain', { signal: controller.signal }).catch(() => {}), once(raw, 'close')])
      }
    }

    return {
      signal: controller.signal,
      send (data, options) {
        let frame = ''
        if (options?.id) frame += `id: ${options.id}\n`
        if (options?.event) frame += `event: ${options.event}\n`
        return write(`${frame}data: ${JSON.stringify(data)}\n\n`)
      },
      comment: (text) => write(`: ${text}\n\n`),
      end () {
        if (!raw.writableEnded) raw.end()
      },
      abort: (reason) => controller.abort(reason)
    }
  })
}, { name: 'event-stream' })
