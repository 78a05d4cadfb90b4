import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import {
  ChatListItemSchema, ChatParamsSchema, ChatSchema, CreateChatBodySchema, ListChatsQuerySchema, MessagePageSchema, MessagesQuerySchema,
  UpdateChatBodySchema
} from '../../schemas/chat.js'
import { bodyProblemResponses, DetailSchema, problemResponses, ref, success } from '../../schemas/common.js'

const CHAT_BODY_LIMIT = 1024 * 1024

const crud: FastifyPluginAsyncTypebox = async (fastify) => {
  const { chats } = fastify
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
      response: { 200: success(ref(ChatSchema), 'The new chat (200, as the original answered)'), ...bodyProblemResponses(401) }
    }
  }, async (request) => {
    const { messages = [], ...settings } = request.body
    return await chats.create(request.user.id, settings, messages)
  })

  fastify.get('/', {
    prefixTrailingSlash: 'slash',
    schema: {
      ...common,
      summary: 'List chats, most recently updated first',
      operationId: 'listChats',
      querystring: ListChatsQuerySchema,
      response: { 200: success(Type.Array(ref(ChatListItemSchema)), 'A page of chats, each with its last message'), ...problemResponses(401) }
    }
  }, async (request) => await chats.list(request.user.id, request.query.skip, request.query.limit))

  fastify.get('/:chat_id', {
    schema: {
      ...common,
      summary: 'A chat with all its messages',
      operationId: 'getChat',
      params: ChatParamsSchema,
      response: { 200: success(ref(ChatSchema), 'The chat and its messages, oldest first'), ...problemResponses(401, 404) }
    }
  }, async (request) => await chats.get(request.user.id, request.params.chat_id))

  fastify.get('/:chat_id/messages', {
    schema: {
      ...common,
      summary: 'A page of a chat\'s messages, newest page first',
      description: 'Each page is in chronological order; pass `next_before` as `before` for the page before it.',
      operationId: 'listMessages',
      params: ChatParamsSchema,
      querystring: MessagesQuerySchema,
      response: { 200: success(ref(MessagePageSchema), 'A page of messages'), ...problemResponses(401, 404) }
    }
  }, async (request) => await chats.page(request.user.id, request.params.chat_id, request.query.before, request.query.limit))

  fastify.put('/:chat_id', {
    bodyLimit: 16 * 1024,
    schema: {
      ...common,
      summary: 'Rename a chat, or set its system prompt or model',
      description: 'Fields left out keep their value; null clears one.',
      operationId: 'updateChat',
      params: ChatParamsSchema,
      body: UpdateChatBodySchema,
      response: { 200: success(ref(ChatSchema), 'The chat as it is now'), ...bodyProblemResponses(401, 404) }
    }
  }, async (request) => await chats.update(request.user.id, request.params.chat_id, request.body))

  fastify.delete('/:chat_id', {
    schema: {
      ...common,
      summary: 'Delete a chat and its messages',
      operationId: 'deleteChat',
      params: ChatParamsSchema,
      response: { 200: success(ref(DetailSchema), 'Deleted, with its messages'), ...problemResponses(401, 404) }
    }
  }, async (request) => {
    await chats.delete(request.user.id, request.params.chat_id)
    return { detail: 'Chat deleted successfully' }
  })
}

export default crud
