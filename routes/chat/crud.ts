import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import {
  ChatListItemSchema, ChatParamsSchema, ChatSchema, CreateChatBodySchema, ListChatsQuerySchema, UpdateChatBodySchema
} from '../../schemas/chat.js'
import { bodyProblemResponses, DetailSchema, problemResponses, ref } from '../../schemas/common.js'

const CHAT_BODY_LIMIT = 1024 * 1024

const crud: FastifyPluginAsyncTypebox = async (fastify) => {
  const { chatsRepository, httpErrors } = fastify
  const chatNotFound = () => httpErrors.notFound('Chat not found')
  const common = { tags: ['Chat'], security: bearerSecurity }

  // Documented as /chat/ like the original; /chat answers too (ignoreTrailingSlash).
  fastify.post('/', {
    prefixTrailingSlash: 'slash',
    bodyLimit: CHAT_BODY_LIMIT,
    schema: {
      ...common,
      summary: 'Create a chat',
      operationId: 'createChat',
      body: CreateChatBodySchema,
      response: { 201: ref(ChatSchema), ...bodyProblemResponses(401) }
    }
  }, async (request, reply) => {
    const chat = await chatsRepository.create(request.user.id, request.body.title ?? null, request.body.messages ?? [])
    return reply.code(201).send(chat)
  })

  fastify.get('/', {
    prefixTrailingSlash: 'slash',
    schema: {
      ...common,
      summary: 'List chats, most recently updated first',
      operationId: 'listChats',
      querystring: ListChatsQuerySchema,
      response: { 200: Type.Array(ref(ChatListItemSchema)), ...problemResponses(401) }
    }
  }, async (request) => await chatsRepository.list(request.user.id, request.query.skip, request.query.limit))

  fastify.get('/:chat_id', {
    schema: {
      ...common,
      summary: 'A chat with all its messages',
      operationId: 'getChat',
      params: ChatParamsSchema,
      response: { 200: ref(ChatSchema), ...problemResponses(401, 404) }
    }
  }, async (request) => {
    const chat = await chatsRepository.get(request.user.id, request.params.chat_id)
    if (!chat) throw chatNotFound()
    return chat
  })

  fastify.put('/:chat_id', {
    bodyLimit: 16 * 1024,
    schema: {
      ...common,
      summary: 'Rename a chat',
      operationId: 'updateChat',
      params: ChatParamsSchema,
      body: UpdateChatBodySchema,
      response: { 200: ref(ChatSchema), ...bodyProblemResponses(401, 404) }
    }
  }, async (request) => {
    const chat = await chatsRepository.rename(request.user.id, request.params.chat_id, request.body.title)
    if (!chat) throw chatNotFound()
    return chat
  })

  fastify.delete('/:chat_id', {
    schema: {
      ...common,
      summary: 'Delete a chat and its messages',
      operationId: 'deleteChat',
      params: ChatParamsSchema,
      response: { 200: ref(DetailSchema), ...problemResponses(401, 404) }
    }
  }, async (request) => {
    if (!await chatsRepository.delete(request.user.id, request.params.chat_id)) throw chatNotFound()
    return { detail: 'Chat deleted successfully' }
  })
}

export default crud
