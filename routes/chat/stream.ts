import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ObjectId } from 'mongodb'
import { Type } from 'typebox'
import { titleFrom } from '../../lib/chat-title.js'
import type { Exchange } from '../../plugins/app/chats-repository.js'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import { ChatParamsSchema, StreamBodySchema } from '../../schemas/chat.js'
import { bodyProblemResponses, DetailSchema, problemResponses, ref } from '../../schemas/common.js'

/** 32,000 characters of 4-byte UTF-8, with room for JSON. */
const STREAM_BODY_LIMIT = 256 * 1024

class TooManyStreamsError extends Error {
  readonly statusCode = 429
  readonly headers = { 'retry-after': '5' }
  constructor (max: number) {
    super(`At most ${max} replies can stream at once; wait for one to end`)
  }
}

const eventsDescription = 'Server-sent events. `start` carries `{ chat_id, message_id }`; unnamed events carry ' +
  '`{ "text", "chat_id" }` and their texts concatenated are the reply (what the original\'s clients read); ' +
  '`error` carries `{ detail }` when the reply failed or the server ended it; `done` is always last, with ' +
  '`{ chat_id, message_id, status }`, sent once the reply is stored. A `: ping` comment comes every ' +
  'STREAM_PING_SECONDS (15) without an event.'

const streamResponse = {
  description: 'A stream of events (see the operation description)',
  content: { 'text/event-stream': { schema: Type.String() } }
}

const stream: FastifyPluginAsyncTypebox = async (fastify) => {
  const { chatsRepository, clientMessageIds, streamSlots, liveStreams, replyStreaming, httpErrors, config } = fastify
  const chatNotFound = () => httpErrors.notFound('Chat not found')

  /**
   * Holds a place on this instance and one of the user's stream slots while `start` stores the
   * exchange and its reply streams; both are given back as soon as the reply is stored, before
   * `done` is sent, so a client that has read `done` can stream again at once.
   */
  async function streamExchange (request: FastifyRequest, reply: FastifyReply, replyId: ObjectId, start: () => Promise<Exchange>) {
    const seat = liveStreams.reserve()
    if (!seat) throw httpErrors.serviceUnavailable('stream capacity of this instance reached')
    let freed: Promise<void> | undefined
    try {
      const release = await streamSlots.acquire(request.user.id, replyId)
      if (!release) throw new TooManyStreamsError(config.MAX_STREAMS_PER_USER)
      const free = () => (freed ??= release().catch((error: Error) =>
        request.log.warn({ err: { message: error.message } }, 'stream slot not released; it frees itself')))
      try {
        await replyStreaming.relay(request, reply, await start(), free)
      } finally {
        await free()
      }
      return reply
    } finally {
      seat()
    }
  }

  fastify.post('/stream', {
    bodyLimit: STREAM_BODY_LIMIT,
    schema: {
      tags: ['Chat'],
      security: bearerSecurity,
      summary: 'Send a message and stream the reply',
      description: `${eventsDescription} Without \`chat_id\` a new chat is created. The user message is stored before the first byte; ` +
        'the reply as it streams, ending `complete`, `interrupted` (client gone, stopped) or `error`.',
      operationId: 'streamChat',
      body: StreamBodySchema,
      produces: ['text/event-stream'],
      response: { 200: streamResponse, ...bodyProblemResponses(401, 404, 502) }
    }
  }, async (request, reply) => {
    const { message, chat_id: chatId = null, client_message_id: clientMessageId } = request.body
    const userId = request.user.id
    const ids = { replyId: new ObjectId(), newChatId: new ObjectId() }
    if (clientMessageId !== undefined) {
      const earlier = await clientMessageIds.claim(userId, chatId, clientMessageId, ids.replyId)
      if (earlier) {
        await replyStreaming.replay(request, reply, earlier)
        return reply
      }
    }
    let stored = false
    try {
      return await streamExchange(request, reply, ids.replyId, async () => {
        const exchange = await chatsRepository.startExchange(userId, chatId, message, titleFrom(message), ids, clientMessageId)
        if (!exchange) throw chatNotFound()
        stored = true
        return exchange
      })
    } catch (error) {
      // Nothing was stored for this id: a retry must be free to send.
      if (clientMessageId !== undefined && !stored) await clientMessageIds.release(userId, chatId, clientMessageId, ids.replyId)
      throw error
    }
  })

  fastify.post('/:chat_id/regenerate', {
    schema: {
      tags: ['Chat'],
      security: bearerSecurity,
      summary: 'Replace the last reply with a new one, streamed',
      description: `${eventsDescription} The chat's last assistant reply is replaced by a new one answering the last user message.`,
      operationId: 'regenerateReply',
      params: ChatParamsSchema,
      produces: ['text/event-stream'],
      response: { 200: streamResponse, ...problemResponses(401, 404, 409, 502) }
    }
  }, async (request, reply) => {
    const replyId = new ObjectId()
    return await streamExchange(request, reply, replyId, async () => {
      const exchange = await chatsRepository.startRegeneration(request.user.id, request.params.chat_id, replyId)
      if (exchange === 'not-found') throw chatNotFound()
      if (exchange === 'busy') throw httpErrors.conflict('A reply is streaming in this chat; stop it first')
      if (exchange === 'nothing') throw httpErrors.conflict('There is no message to answer in this chat')
      return exchange
    })
  })

  fastify.post('/:chat_id/stop', {
    schema: {
      tags: ['Chat'],
      security: bearerSecurity,
      summary: 'Stop the reply streaming in a chat',
      description: 'The running reply ends with status `interrupted`, whichever session or instance streams it.',
      operationId: 'stopReply',
      params: ChatParamsSchema,
      response: { 202: ref(DetailSchema), ...problemResponses(401, 404, 409) }
    }
  }, async (request, reply) => {
    const staleBefore = new Date(Date.now() - config.REPLY_STALE_SECONDS * 1000)
    const stopped = await chatsRepository.requestStop(request.user.id, request.params.chat_id, staleBefore)
    if (!stopped) throw chatNotFound()
    if (stopped.length === 0) throw httpErrors.conflict('No reply is streaming in this chat')
    liveStreams.stopReplies(stopped.map((id) => id.toHexString()))
    return reply.code(202).send({ detail: 'Stopping the reply' })
  })
}

export default stream
