import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AssistantError, type AssistantEvent, type Usage } from '../../lib/assistants/types.js'
import { PROBLEM_CONTENT_TYPE, problem } from '../../lib/problem.js'
import { retryWhileUnavailable } from '../../lib/retry.js'
import type { ReplyStatus } from '../../schemas/chat.js'
import type { Exchange, StoredReply } from './chats-repository.js'
import { endNotice } from './live-streams.js'

type FinalStatus = Exclude<ReplyStatus, 'streaming'>

/** How often a replay of a reply still streaming elsewhere reads its latest checkpoint. */
const FOLLOW_INTERVAL_MS = 500

export interface ReplyStreaming {
  /**
   * Asks the assistant for the exchange's reply and streams it: `start` (ids), the text events the
   * original's clients read, then `error` (when something went wrong) and `done`, sent once the
   * reply is stored. A provider that refuses before anything was sent gets a 502 instead.
   * `stored` is awaited once the reply is stored, before the client is told.
   */
  relay (request: FastifyRequest, reply: FastifyReply, exchange: Exchange, stored: () => Promise<void>): Promise<void>
  /** Streams a stored reply again (an idempotent retry), following it while it is still being written. */
  replay (request: FastifyRequest, reply: FastifyReply, stored: StoredReply): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    replyStreaming: ReplyStreaming
  }
}

export default fp(async function replyStreaming (fastify) {
  const { assistant, chatsRepository, liveStreams } = fastify
  const maxMs = fastify.config.MAX_STREAM_SECONDS * 1000

  async function relay (request: FastifyRequest, reply: FastifyReply, exchange: Exchange, stored: () => Promise<void>) {
    const events = fastify.eventStream(reply)
    const chatId = exchange.chatId.toHexString()
    const messageId = exchange.replyId.toHexString()
    const log = request.log.child({ chat_id: chatId, message_id: messageId })

    async function store (text: string, status: FinalStatus, details: { usage?: Usage, error?: string } = {}) {
      try {
        await retryWhileUnavailable(() => chatsRepository.finishReply(exchange, text, status, details))
      } catch (error) {
        log.error({ err: error }, 'reply could not be stored')
      }
      log.info({ status, chars: text.length }, 'reply stream ended')
      await stored()
    }

    await liveStreams.run({ stream: events, sessionId: request.user.sessionId, replyId: messageId }, async () => {
      let source: AsyncIterable<AssistantEvent> | undefined
      try {
        source = await assistant.start({ messages: exchange.context, model: exchange.model, signal: events.signal })
      } catch (error) {
        if (!events.signal.aborted) {
          const detail = error instanceof AssistantError ? error.message : 'The assistant failed'
          log.error({ err: error }, 'assistant refused the request')
          await store('', 'error', { error: detail })
          await reply.code(502).type(PROBLEM_CONTENT_TYPE).send(problem(502, detail, request.id))
          return
        }
      }

      await events.send({ chat_id: chatId, message_id: messageId }, { event: 'start' })
      let text = ''
      let usage: Usage | undefined
      let failure: AssistantError | undefined
      if (source) {
        const checkpoints = chatsRepository.replyCheckpoints(exchange, (error) =>
          log.warn({ err: { message: error.message } }, 'reply checkpoint failed'))
        try {
          for await (const event of source) {
            if ('usage' in event) {
              usage = event.usage
              continue
            }
            text += event.text
            checkpoints.update(text)
            await events.send({ text: event.text, chat_id: chatId })
            if (events.signal.aborted) break
          }
        } catch (error) {
          if (!events.signal.aborted) {
            failure = error instanceof AssistantError ? error : new AssistantError('The assistant failed mid-reply', { cause: error })
            log.error({ err: error }, 'assistant failed mid-reply')
          }
        } finally {
          await checkpoints.stop()
        }
      }

      const status: FinalStatus = events.signal.aborted || failure?.dropConnection ? 'interrupted' : failure ? 'error' : 'complete'
      await store(text, status, { ...(usage && { usage }), ...(status === 'error' && { error: failure!.message }) })
      if (failure?.dropConnection) return events.destroy()
      const notice = failure?.message ?? endNotice(events.signal.reason)
      if (notice) await events.send({ detail: notice }, { event: 'error' })
      await events.send({ chat_id: chatId, message_id: messageId, status }, { event: 'done' })
      events.end()
    })
  }

  async function replay (request: FastifyRequest, reply: FastifyReply, stored: StoredReply) {
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
        current = await chatsRepository.findReply(request.user.id, stored.replyId) ?? { ...current, status: 'interrupted' }
      }
      if (current.status === 'error') await events.send({ detail: current.error ?? 'The assistant failed' }, { event: 'error' })
    } catch (error) {
      request.log.warn({ err: { message: (error as Error).message }, message_id: messageId }, 'replay could not read the reply')
      await events.send({ detail: 'The stored reply could not be read; retry shortly' }, { event: 'error' })
    }
    await events.send({ chat_id: chatId, message_id: messageId, status: current.status }, { event: 'done' })
    events.end()
  }

  fastify.decorate('replyStreaming', { relay, replay } satisfies ReplyStreaming)
}, { name: 'reply-streaming', dependencies: ['env', 'assistant', 'chats-repository', 'live-streams', 'event-stream'] })
