import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import type { EventStream } from './event-stream.js'
import type { StoredReply } from './exchanges.js'
import { endNotice } from './live-streams.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Streams a stored reply from character `from` on (a resumed stream's Last-Event-ID, 0 for a
     * replay), following it while it is still being written, here or on another instance.
     */
    replayReply (events: EventStream, stored: StoredReply, from: number): Promise<void>
  }
}

/**
 * Where a client that reconnects left off: its `Last-Event-ID`, the length of the reply it has
 * (each text event's id), validated by the route's header schema. 0 without one.
 */
export function resumeOffset (request: FastifyRequest): number {
  const id = request.headers['last-event-id']
  return typeof id === 'string' ? Number(id) : 0
}

export default fp(async function replyReplay (fastify) {
  const { replyWatch } = fastify
  const maxMs = fastify.config.MAX_STREAM_SECONDS * 1000

  // A database outage while following only delays it: the batched read tries again at its next tick.
  fastify.decorate('replayReply', async function (events: EventStream, stored: StoredReply, from: number) {
    const chatId = stored.chatId.toHexString()
    const messageId = stored.replyId.toHexString()
    const deadline = Date.now() + maxMs
    const follower = replyWatch.follow(stored)
    let current = stored
    let sent = from
    try {
      await events.send({ chat_id: chatId, message_id: messageId }, { event: 'start' })
      for (;;) {
        if (current.content.length > sent) {
          await events.send({ text: current.content.slice(sent), chat_id: chatId }, { id: String(current.content.length) })
          sent = current.content.length
        }
        if (current.status !== 'streaming' || events.signal.aborted || Date.now() > deadline) break
        current = await follower.next(current, events.signal) ?? { ...current, status: 'interrupted' }
      }
      if (current.status === 'error') await events.send({ detail: current.error ?? 'The assistant failed' }, { event: 'error' })
      const notice = endNotice(events.signal.reason)
      if (notice) await events.send({ detail: notice }, { event: 'error' })
    } finally {
      follower.close()
    }
    await events.send({ chat_id: chatId, message_id: messageId, status: current.status }, { event: 'done' })
    events.end()
  })
}, { name: 'reply-replay', dependencies: ['env', 'reply-watch', 'event-stream'] })
