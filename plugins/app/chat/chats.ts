import fp from 'fastify-plugin'
import { ObjectId } from 'mongodb'
import type { Chat, ChatListItem, ChatSettings, MessagePage, NewMessage } from '../../../schemas/chat.js'
import { copyOf, newMessage, toMessage, type ChatDocument } from './documents.js'
import { ChatNotFoundError, MessageNotFoundError } from './errors.js'

export interface Chats {
  create (userId: string, settings: ChatSettings, initial: NewMessage[]): Promise<Chat>
  list (userId: string, skip: number, limit: number): Promise<ChatListItem[]>
  /** The chat with all its messages. The methods below throw ChatNotFoundError for a chat not the user's. */
  get (userId: string, chatId: string): Promise<Chat>
  update (userId: string, chatId: string, settings: ChatSettings): Promise<Chat>
  delete (userId: string, chatId: string): Promise<void>
  page (userId: string, chatId: string, before: string | undefined, limit: number): Promise<MessagePage>
}

declare module 'fastify' {
  interface FastifyInstance {
    chats: Chats
  }
}

function chatFields (doc: ChatDocument) {
  return {
    id: doc._id.toHexString(),
    user_id: doc.user_id.toHexString(),
    title: doc.title,
    system_prompt: doc.system_prompt ?? null,
    model: doc.model ?? null,
    created_at: doc.created_at.toISOString(),
    updated_at: doc.updated_at.toISOString()
  }
}

/** Chats with their messages, as the CRUD routes show them: the two repositories, put together. */
export default fp(async function chats (fastify) {
  const { chatsRepository, messagesRepository } = fastify

  async function ownChat (userId: string, chatId: string) {
    const chat = await chatsRepository.findOwn(userId, chatId)
    if (!chat) throw new ChatNotFoundError()
    return chat
  }

  fastify.decorate('chats', {
    async create (userId, settings, initial) {
      const owner = new ObjectId(userId)
      const now = new Date()
      const _id = new ObjectId()
      const messages = initial.map((m, i) => newMessage(_id, owner, i + 1, m.role, m.content, now))
      const last = messages.at(-1)
      const chat: ChatDocument = {
        _id,
        user_id: owner,
        title: settings.title ?? null,
        system_prompt: settings.system_prompt ?? null,
        model: settings.model ?? null,
        created_at: now,
        updated_at: now,
        message_count: messages.length,
        last_message: last ? copyOf(last) : null
      }
      await chatsRepository.insert(chat)
      await messagesRepository.insert(messages)
      return { ...chatFields(chat), messages: messages.map(toMessage) }
    },

    async list (userId, skip, limit) {
      const docs = await chatsRepository.list(new ObjectId(userId), skip, limit)
      return docs.map((doc) => ({ ...chatFields(doc), last_message: doc.last_message ? toMessage(doc.last_message) : null }))
    },

    async get (userId, chatId) {
      const chat = await chatsRepository.find(userId, chatId)
      if (!chat) throw new ChatNotFoundError()
      return { ...chatFields(chat), messages: await messagesRepository.of(chat._id) }
    },

    async update (userId, chatId, settings) {
      const { _id } = await ownChat(userId, chatId)
      const chat = await chatsRepository.update(_id, settings)
      if (!chat) throw new ChatNotFoundError()
      return { ...chatFields(chat), messages: await messagesRepository.of(_id) }
    },

    async delete (userId, chatId) {
      const { _id } = await ownChat(userId, chatId)
      if (!await chatsRepository.delete(_id)) throw new ChatNotFoundError()
      await messagesRepository.deleteOfChat(_id)
    },

    async page (userId, chatId, before, limit) {
      const { _id } = await ownChat(userId, chatId)
      const page = await messagesRepository.page(_id, before, limit)
      if (!page) throw new MessageNotFoundError()
      return page
    }
  } satisfies Chats)
}, { name: 'chats', dependencies: ['chats-repository', 'messages-repository'] })
