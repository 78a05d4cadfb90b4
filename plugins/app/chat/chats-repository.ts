import fp from 'fastify-plugin'
import { ObjectId, type Collection } from 'mongodb'
import { findOwned } from '../../../lib/by-id.js'
import { parseObjectId } from '../../../lib/object-id.js'
import type { Chat, ChatListItem, ChatSettings, Message, MessagePage, NewMessage } from '../../../schemas/chat.js'
import { copyOf, messageProjection, newMessage, toMessage, type ChatDocument, type MessageDocument, findOwnChat } from './documents.js'

const chatListProjection = { message_count: 0 } as const

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

/**
 * Chats and their messages, always scoped by owner: another user's chat and a malformed id are
 * both simply "not found". The turns of a streamed conversation are stored by chat/streaming/exchanges.ts.
 */
export function createChatsRepository (chats: Collection<ChatDocument>, messages: Collection<MessageDocument>) {
  async function messagesOf (chatId: ObjectId): Promise<Message[]> {
    const docs = await messages.find({ chat_id: chatId }, { projection: messageProjection }).sort({ seq: 1 }).toArray()
    return docs.map(toMessage)
  }

  const ownChat = (userId: string, chatId: string) => findOwnChat(chats, userId, chatId)

  return {
    async ensureIndexes () {
      await chats.createIndex({ user_id: 1, updated_at: -1 }, { name: 'user_recent' })
    },

    async create (userId: string, settings: ChatSettings, initial: NewMessage[]): Promise<Chat> {
      const owner = new ObjectId(userId)
      const now = new Date()
      const _id = new ObjectId()
      const docs = initial.map((m, i) => newMessage(_id, owner, i + 1, m.role, m.content, now))
      const last = docs.at(-1)
      const chat: ChatDocument = {
        _id,
        user_id: owner,
        title: settings.title ?? null,
        system_prompt: settings.system_prompt ?? null,
        model: settings.model ?? null,
        created_at: now,
        updated_at: now,
        message_count: docs.length,
        last_message: last ? copyOf(last) : null
      }
      await chats.insertOne(chat)
      if (docs.length > 0) await messages.insertMany(docs)
      return { ...chatFields(chat), messages: docs.map(toMessage) }
    },

    async list (userId: string, skip: number, limit: number): Promise<ChatListItem[]> {
      const docs = await chats.find({ user_id: new ObjectId(userId) }, { projection: chatListProjection })
        .sort({ updated_at: -1, _id: -1 }).skip(skip).limit(limit).toArray()
      return docs.map((doc) => ({ ...chatFields(doc), last_message: doc.last_message ? toMessage(doc.last_message) : null }))
    },

    async get (userId: string, chatId: string): Promise<Chat | null> {
      const _id = parseObjectId(chatId)
      if (!_id) return null
      const chat = await findOwned(chats, _id, new ObjectId(userId), chatListProjection)
      return chat ? { ...chatFields(chat), messages: await messagesOf(_id) } : null
    },

    /** Sets the given title, system prompt and model (a field left out keeps its value). */
    async update (userId: string, chatId: string, settings: ChatSettings): Promise<Chat | null> {
      const _id = parseObjectId(chatId)
      if (!_id || !await ownChat(userId, chatId)) return null
      // Named fields only: the body may carry others (ignored, as the original's pydantic did).
      const changes: Partial<ChatDocument> = { updated_at: new Date() }
      if (settings.title !== undefined) changes.title = settings.title
      if (settings.system_prompt !== undefined) changes.system_prompt = settings.system_prompt
      if (settings.model !== undefined) changes.model = settings.model
      // The owner never changes, so the update needs only the id (FerretDB: see findOwned).
      const chat = await chats.findOneAndUpdate(
        { _id },
        { $set: changes },
        { returnDocument: 'after' } // no projection: FerretDB 1.x refuses one on findAndModify
      )
      return chat ? { ...chatFields(chat), messages: await messagesOf(_id) } : null
    },

    /** Every chat and message of the user (account deletion). */
    async deleteAllOf (userId: ObjectId) {
      await chats.deleteMany({ user_id: userId })
      await messages.deleteMany({ user_id: userId })
    },

    async delete (userId: string, chatId: string): Promise<boolean> {
      const _id = parseObjectId(chatId)
      if (!_id || !await ownChat(userId, chatId)) return false
      const { deletedCount } = await chats.deleteOne({ _id })
      if (deletedCount === 0) return false
      await messages.deleteMany({ chat_id: _id })
      return true
    },

    /**
     * A page of the chat's messages, in order, ending just before `before` (or with the newest),
     * and the id to ask for the page before it (null on the first page of the chat).
     */
    async page (userId: string, chatId: string, before: string | undefined, limit: number): Promise<MessagePage | 'no-chat' | 'no-message'> {
      const chat = await ownChat(userId, chatId)
      if (!chat) return 'no-chat'
      let seq = Number.MAX_SAFE_INTEGER
      if (before !== undefined) {
        const anchorId = parseObjectId(before)
        const anchor = anchorId && await messages.findOne({ _id: anchorId }, { projection: { seq: 1, chat_id: 1 } })
        if (!anchor || !anchor.chat_id.equals(chat._id)) return 'no-message'
        seq = anchor.seq
      }
      const docs = await messages.find({ chat_id: chat._id, seq: { $lt: seq } }, { projection: messageProjection })
        .sort({ seq: -1 }).limit(limit + 1).toArray()
      const more = docs.length > limit
      const page = docs.slice(0, limit).reverse()
      return { messages: page.map(toMessage), next_before: more ? page[0]!._id.toHexString() : null }
    }
  }
}

export type ChatsRepository = ReturnType<typeof createChatsRepository>

declare module 'fastify' {
  interface FastifyInstance {
    chatsRepository: ChatsRepository
  }
}

export default fp(async function chatsRepository (fastify) {
  const db = fastify.mongo.db!
  const repository = createChatsRepository(db.collection<ChatDocument>('chats'), db.collection<MessageDocument>('messages'))
  fastify.databaseSetup.add('chats indexes', () => repository.ensureIndexes())
  fastify.decorate('chatsRepository', repository)
}, { name: 'chats-repository', dependencies: ['env', 'mongodb', 'database-setup'] })
