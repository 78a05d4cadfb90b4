import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import { ChatParamsSchema, ResumeHeadersSchema, ResumeQuerySchema, StreamBodySchema, StreamEventSchema } from '../../schemas/chat.js'
import { bodyProblemResponses, DetailSchema, problemResponses, ref, responseHeaders, success } from '../../schemas/common.js'

/** 32,000 characters of 4-byte UTF-8, with room for JSON. */
const STREAM_BODY_LIMIT = 256 * 1024

const eventsDescription = 'Server-sent events. `start` carries `{ chat_id, message_id }`; unnamed events carry ' +
  '`{ "text", "chat_id" }` and their texts concatenated are the reply (what the original\'s clients read); ' +
  '`error` carries `{ detail }` when the reply failed or the server ended it; `done` is always last, with ' +
  '`{ chat_id, message_id, status }`, sent once the reply is stored. A `: ping` comment comes every ' +
  'STREAM_PING_SECONDS (15) without an event.'

/**
 * The media type's schema is one event, StreamEvent, as OpenAPI 3.2's `itemSchema` would say it
 * and as schemathesis reads `schema` in 3.1. The string stands for the whole body, which is what
 * generated clients that read a response at once (openapi-python-client) get; no event is a string.
 */
const streamResponse = {
  description: 'The reply as server-sent events, each one a StreamEvent',
  headers: responseHeaders({
    'Cache-Control': Type.String({ examples: ['no-cache'] }),
    'X-Accel-Buffering': Type.String({ examples: ['no'], description: 'asks proxies not to buffer the stream' })
  }),
  content: { 'text/event-stream': { schema: Type.Union([ref(StreamEventSchema), Type.String({ description: 'the whole stream, read at once' })]) } }
}

/** The session is checked by the chat turn, in the same round trip as its stream slot. */
const streamConfig = { deferSessionCheck: true }

const stream: FastifyPluginAsyncTypebox = async (fastify) => {
  const { chatTurns } = fastify

  fastify.post('/stream', {
    bodyLimit: STREAM_BODY_LIMIT,
    config: streamConfig,
    schema: {
      tags: ['Chat'],
      security: bearerSecurity,
      summary: 'Send a message and stream the reply',
      description: `${eventsDescription} Without \`chat_id\` a new chat is created. The user message is stored before the first byte; ` +
        'the reply as it streams, ending `complete`, `interrupted` (client gone, stopped) or `error`. ' +
        'With `client_message_id` the reply goes on when the client drops, and the same request with `Last-Event-ID` ' +
        '(or GET /chat/{chat_id}/stream) resumes it.',
      operationId: 'streamChat',
      headers: ResumeHeadersSchema,
      body: StreamBodySchema,
      produces: ['text/event-stream'],
      response: { 200: streamResponse, ...bodyProblemResponses(401, 404, 502) }
    }
  }, async (request, reply) => {
    await chatTurns.send(request, reply, request.body)
    return reply
  })

  fastify.get('/:chat_id/stream', {
    schema: {
      tags: ['Chat'],
      security: bearerSecurity,
      summary: 'Resume the stream of a reply',
      description: `${eventsDescription} The reply \`message_id\` of the chat, from after \`Last-Event-ID\` (all of it without one), ` +
        'then live while it is still streaming, on this instance or another, then `done`. An EventSource that reconnects ' +
        'sends `Last-Event-ID` by itself. A reply that has ended gives the rest and `done` at once.',
      operationId: 'resumeStream',
      params: ChatParamsSchema,
      querystring: ResumeQuerySchema,
      headers: ResumeHeadersSchema,
      produces: ['text/event-stream'],
      response: { 200: streamResponse, ...problemResponses(401, 404) }
    }
  }, async (request, reply) => {
    await chatTurns.resume(request, reply, request.params.chat_id, request.query.message_id)
    return reply
  })

  fastify.post('/:chat_id/regenerate', {
    config: streamConfig,
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
    await chatTurns.regenerate(request, reply, request.params.chat_id)
    return reply
  })

  fastify.post('/:chat_id/stop', {
    schema: {
      tags: ['Chat'],
      security: bearerSecurity,
      summary: 'Stop the reply streaming in a chat',
      description: 'The running reply ends with status `interrupted`, whichever session or instance streams it.',
      operationId: 'stopReply',
      params: ChatParamsSchema,
      response: { 202: success(ref(DetailSchema), 'The reply is being stopped'), ...problemResponses(401, 404, 409) }
    }
  }, async (request, reply) => {
    await chatTurns.stop(request.user.id, request.params.chat_id)
    return reply.code(202).send({ detail: 'Stopping the reply' })
  })
}

export default stream
