import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ObjectId } from 'mongodb'
import { AssistantError, type AssistantEvent } from '../assistant/types.js'
import { titleFrom } from '../title.js'
import { retryWhileUnavailable } from '../../../../lib/retry.js'
import type { StreamBody, Usage } from '../../../../schemas/chat.js'
import type { EventStream } from './event-stream.js'
import type { Exchange, FinalStatus, StoredReply } from './exchanges.js'
import { endNotice } from './live-streams.js'
import { resumeOffset } from './reply-replay.js'
import { AssistantRefusedError, ChatBusyError, ChatNotFoundError, MessageNotFoundError, StreamCapacityError, TooManyStreamsError } from '../errors.js'
import { parseObjectId } from '../../../../lib/object-id.js'

export interface ChatTurns {
  /** POST /chat/stream: stores the message and its reply, and streams the reply (or replays an earlier send). */
  send (request: FastifyRequest, reply: FastifyReply, body: StreamBody): Promise<void>
  /** POST /chat/{id}/regenerate: a new reply replacing the last one, streamed. */
  regenerate (request: FastifyRequest, reply: FastifyReply, chatId: string): Promise<void>
  /** POST /chat/{id}/stop: ends the chat's running reply, on whichever instance it streams. */
  stop (userId: string, chatId: string): Promise<void>
  /** GET /chat/{id}/stream: a reply of the chat from the client's Last-Event-ID on, live until it ends. */
  resume (request: FastifyRequest, reply: FastifyReply, chatId: string, messageId: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    chatTurns: ChatTurns
  }
}

/**
 * One turn of a chat, from the request to the stored reply: a place on this instance, then (in one
 * round trip) the session check, one of the user's stream slots and the send's idempotency claim;
 * then the exchange stored (one or two more); then the reply relayed, checkpointed with the
 * instance's batch, stored whole, and the slot given back before `done` is sent.
 */
export default fp(async function chatTurns (fastify) {
  const { assistant, clientMessageIds, config, exchanges, instance, liveStreams, replyCheckpoints, streamSlots } = fastify
  const outcomes = new Counter({ name: 'chat_streams_total', help: 'Streamed replies by how they ended', labelNames: ['status'] as const, registers: [fastify.metrics] })

  /** A send's `client_message_id`: taken for this send, or the reply of the earlier send that took it. */
  interface Idempotency {
    claim (): Promise<StoredReply | null>
    release (): Promise<void>
  }

  /** A place on this instance, then `work` on an event stream that stops, session ends, the time limit and shutdown can end. */
  async function live (request: FastifyRequest, reply: FastifyReply, key: string, work: (events: EventStream) => Promise<void>) {
    const seat = liveStreams.reserve()
    if (!seat) throw new StreamCapacityError()
    const events = fastify.eventStream(reply)
    try {
      await liveStreams.run({ stream: events, sessionId: request.user.sessionId, replyId: key }, () => work(events))
    } finally {
      seat()
    }
  }

  async function turn (request: FastifyRequest, reply: FastifyReply, replyId: ObjectId, start: () => Promise<Exchange>, idempotency?: Idempotency) {
    await live(request, reply, replyId.toHexString(), async (events) => {
      const [session, slot, claimed] = await Promise.allSettled([
        request.sessionCheck,
        streamSlots.acquire({ userId: request.user.id, replyId: replyId.toHexString(), sessionId: request.user.sessionId }),
        idempotency?.claim()
      ])
      const release = slot.status === 'fulfilled' ? slot.value : null
      const earlier = claimed.status === 'fulfilled' ? claimed.value : undefined
      let stored = false
      try {
        for (const outcome of [session, slot, claimed]) if (outcome.status === 'rejected') throw outcome.reason
        if (earlier) {
          await release?.()
          return await fastify.replayReply(events, earlier, resumeOffset(request))
        }
        if (!release) throw new TooManyStreamsError(config.MAX_STREAMS_PER_USER)
        const exchange = await start()
        stored = true
        // A send the client can resume (it names itself) goes on when the client drops; a replay does not.
        if (idempotency) events.outliveClient()
        await relay(request, events, exchange, release)
      } finally {
        // Nothing was stored for this send: a retry must be free to take its id.
        if (!stored && earlier === null) await idempotency?.release()
        await release?.()
      }
    })
  }

  async function relay (request: FastifyRequest, events: EventStream, exchange: Exchange, release: () => Promise<void>) {
    const chatId = exchange.chatId.toHexString()
    const messageId = exchange.replyId.toHexString()
    // Fields on each line rather than a child logger: a child per stream costs a logger object and hidden classes.
    const log = request.log
    let text = ''
    let pieces = 0

    async function store (status: FinalStatus, details: { usage?: Usage, error?: string } = {}) {
      await Promise.all([
        retryWhileUnavailable(() => exchanges.finishReply(exchange, text, pieces, status, details))
          .catch((error: Error) => log.error({ chat_id: chatId, message_id: messageId, err: error }, 'reply could not be stored')),
        release()
      ])
      outcomes.inc({ status })
      log.info({ chat_id: chatId, message_id: messageId, status, chars: text.length }, 'reply stream ended')
    }

    let source: AsyncIterable<AssistantEvent> | undefined
    try {
      source = await assistant.start({ messages: exchange.context, model: exchange.model, signal: events.signal })
      // The provider has what it needs: a long chat's history need not stay in memory while the reply streams.
      exchange.context = []
    } catch (error) {
      if (!events.signal.aborted) {
        const detail = error instanceof AssistantError ? error.message : 'The assistant failed'
        await store('error', { error: detail })
        throw new AssistantRefusedError(detail, { cause: error })
      }
    }

    await events.send({ chat_id: chatId, message_id: messageId }, { event: 'start' })
    let usage: Usage | undefined
    let failure: AssistantError | undefined
    if (source) {
      const checkpoint = replyCheckpoints.track(exchange.replyId)
      try {
        for await (const event of source) {
          if ('usage' in event) {
            usage = event.usage
            continue
          }
          text += event.text
          checkpoint.update(text, ++pieces)
          // The id is the reply's length so far: a client that reconnects with it gets the rest.
          await events.send({ text: event.text, chat_id: chatId }, { id: String(text.length) })
          if (events.signal.aborted) break
        }
      } catch (error) {
        if (!events.signal.aborted) {
          failure = error instanceof AssistantError ? error : new AssistantError('The assistant failed mid-reply', { cause: error })
          log.error({ chat_id: chatId, message_id: messageId, err: error }, 'assistant failed mid-reply')
        }
      } finally {
        await checkpoint.stop()
      }
    }

    const status: FinalStatus = events.signal.aborted || failure?.dropConnection ? 'interrupted' : failure ? 'error' : 'complete'
    await store(status, { ...(usage && { usage }), ...(status === 'error' && { error: failure!.message }) })
    if (failure?.dropConnection) return events.destroy()
    const notice = failure?.message ?? endNotice(events.signal.reason)
    if (notice) await events.send({ detail: notice }, { event: 'error' })
    await events.send({ chat_id: chatId, message_id: messageId, status }, { event: 'done' })
    events.end()
  }

  fastify.decorate('chatTurns', {
    async send (request, reply, { message, chat_id: chatId = null, client_message_id: clientMessageId }) {
      const userId = request.user.id
      const questionId = new ObjectId()
      const replyId = new ObjectId()
      const newChatId = new ObjectId()
      const idempotency = clientMessageId === undefined
        ? undefined
        : {
            claim: () => clientMessageIds.claim(userId, chatId, clientMessageId, questionId),
            release: () => clientMessageIds.release(userId, chatId, clientMessageId, questionId)
          }
      return turn(request, reply, replyId, async () => {
        const exchange = await exchanges.startSend({
          userId, chatId, text: message, title: titleFrom(message), questionId, replyId, newChatId, instance: instance.id, ...(clientMessageId !== undefined && { clientMessageId })
        })
        if (!exchange) throw new ChatNotFoundError()
        return exchange
      }, idempotency)
    },

    async regenerate (request, reply, chatId) {
      const replyId = new ObjectId()
      return turn(request, reply, replyId, async () => {
        const exchange = await exchanges.startRegeneration(request.user.id, chatId, replyId, instance.id)
        if (exchange === 'not-found') throw new ChatNotFoundError()
        if (exchange === 'busy') throw new ChatBusyError('A reply is streaming in this chat; stop it first')
        if (exchange === 'nothing') throw new ChatBusyError('There is no message to answer in this chat')
        return exchange
      })
    },

    async stop (userId, chatId) {
      const replies = await exchanges.streamingReplies(userId, chatId)
      if (!replies) throw new ChatNotFoundError()
      const named = replies.flatMap((r) => r.instance ? [{ replyId: r.replyId.toHexString(), instance: r.instance }] : [])
      const alive = await instance.alive(named.map((r) => r.instance).filter((id) => id !== instance.id))
      const running = named.filter((r) => r.instance === instance.id ? liveStreams.has(r.replyId) : alive.has(r.instance))
      if (running.length === 0) throw new ChatBusyError('No reply is streaming in this chat')
      await liveStreams.stopReplies(running)
    },

    async resume (request, reply, chatId, messageId) {
      const replyId = parseObjectId(messageId)
      const stored = replyId && await exchanges.findReply(request.user.id, replyId)
      if (!stored || stored.chatId.toHexString() !== chatId) throw new MessageNotFoundError()
      // Under a key of its own: the follower ends with its session, not with a stop of the reply.
      await live(request, reply, `follower ${request.id}`, (events) => fastify.replayReply(events, stored, resumeOffset(request)))
    }
  } satisfies ChatTurns)
}, {
  name: 'chat-turns',
  dependencies: ['env', 'assistant', 'client-message-ids', 'exchanges', 'instance', 'live-streams', 'reply-checkpoints', 'reply-replay', 'stream-slots', 'event-stream', 'metrics']
})
