import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { StoredReply } from './exchanges.js'

/** How often a replay of a reply still streaming elsewhere reads it again. */
const FOLLOW_INTERVAL_MS = 500

declare module 'fastify' {
  interface FastifyInstance {
    /** Streams a stored reply again (an idempotent retry), following it while it is still being written. */
    replayReply (request: FastifyRequest, reply: FastifyReply, stored: StoredReply): Promise<void>
  }
}

export default fp(async function replyReplay (fastify) {
  const { exchanges } = fastify
  const maxMs = fastify.config.MAX_STREAM_SECONDS * 1000

  fastify.decorate('replayReply', async function (request: FastifyRequest, reply: FastifyReply, stored: StoredReply) {
    const events = fastify.eventStream(reply)
    const chatId = stored.chatId.toHexString()
    const messageId = stored.replyId.toHexString()
    const deadline = Date.now() + maxMs
    let current = stored
    let sent = 0
    try {
      await events.send({ chat_id: chatId, message_id: messageId }, { event: 'start' })
      for (;;) {
        if (current.content.length > sent) {
          await events.send({ text: current.content.slice(sent), chat_id: chatId })
          sent = current.content.length
        }
        if (current.status !== 'streaming' || events.signal.aborted || Date.now() > deadline) break
        await sleep(FOLLOW_INTERVAL_MS, undefined, { signal: events.signal }).catch(() => {})
        current = await exchanges.findReply(request.user.id, stored.replyId) ?? { ...current, status: 'interrupted' }
      }
      if (current.status === 'error') await events.send({ detail: current.error ?? 'The assistant failed' }, { event: 'error' })
    } catch (error) {
      request.log.warn({ err: { message: (error as Error).message }, message_id: messageId }, 'replay could not read the reply')
      await events.send({ detail: 'The stored reply could not be read; retry shortly' }, { event: 'error' })
    }
    await events.send({ chat_id: chatId, message_id: messageId, status: current.status }, { event: 'done' })
    events.end()
  })
}, { name: 'reply-replay', dependencies: ['env', 'exchanges', 'event-stream'] })
