import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { titleFrom } from '../../lib/chat-title.js'
import { retryWhileUnavailable } from '../../lib/retry.js'
import { SessionEndedError } from '../../plugins/app/live-streams.js'
import type { ReplyStatus } from '../../schemas/chat.js'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import { StreamBodySchema } from '../../schemas/chat.js'
import { bodyProblemResponses } from '../../schemas/common.js'

/** 32,000 characters of 4-byte UTF-8, with room for JSON. */
const STREAM_BODY_LIMIT = 256 * 1024

const stream: FastifyPluginAsyncTypebox = async (fastify) => {
  const { chatsRepository, assistant, httpErrors } = fastify

  fastify.post('/stream', {
    bodyLimit: STREAM_BODY_LIMIT,
    schema: {
      tags: ['Chat'],
      security: bearerSecurity,
      summary: 'Send a message and stream the reply',
      description: 'Server-sent events; each event\'s data is `{ "text", "chat_id" }` and the texts concatenated are the reply. ' +
        'Without `chat_id` a new chat is created. The user message is stored before the first byte; the reply when it ends ' +
        '(status `interrupted` if the client leaves early).',
      operationId: 'streamChat',
      body: StreamBodySchema,
      produces: ['text/event-stream'],
      response: {
        200: {
          description: 'A stream of `data: {"text": "...", "chat_id": "..."}` events',
          content: { 'text/event-stream': { schema: Type.String() } }
        },
        ...bodyProblemResponses(401, 404)
      }
    }
  }, async (request, reply) => {
    const { message, chat_id: chatId } = request.body
    const exchange = await chatsRepository.startExchange(request.user.id, chatId ?? null, message, titleFrom(message))
    if (!exchange) throw httpErrors.notFound('Chat not found')

    const events = fastify.openEventStream(request, reply)
    const id = exchange.chatId.toHexString()
    await fastify.liveStreams.run({ stream: events, sessionId: request.user.sessionId }, async () => {
      let text = ''
      let status: Exclude<ReplyStatus, 'streaming'> = 'complete'
      const checkpoints = chatsRepository.replyCheckpoints(exchange, (error) =>
        request.log.warn({ err: { message: error.message }, chat_id: id }, 'reply checkpoint failed'))
      try {
        for await (const piece of assistant.reply(exchange.context, events.signal)) {
          text += piece
          checkpoints.update(text)
          await events.send({ text: piece, chat_id: id })
          if (events.signal.aborted) break
        }
      } catch (error) {
        if (!events.signal.aborted) {
          status = 'error'
          request.log.error({ err: error, chat_id: id }, 'assistant failed mid-stream')
        }
      } finally {
        await checkpoints.stop()
      }
      if (events.signal.aborted) {
        status = 'interrupted'
        if (events.signal.reason instanceof SessionEndedError) await events.send({ detail: 'Session ended' }, { event: 'error' })
      }
      try {
        await retryWhileUnavailable(() => chatsRepository.finishReply(exchange, text, status))
      } catch (error) {
        request.log.error({ err: error, chat_id: id }, 'reply could not be stored')
      }
      request.log.info({ chat_id: id, status, chars: text.length }, 'reply stream ended')
      events.end()
    })
  })
}

export default stream
