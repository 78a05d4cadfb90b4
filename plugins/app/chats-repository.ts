import fp from 'fastify-plugin'
import { ObjectId, type Collection } from 'mongodb'
import { parseObjectId } from '../../lib/object-id.js'
import type { Chat, ChatListItem, Message, NewMessage, ReplyStatus, Role } from '../../schemas/chat.js'

interface MessageDocument {
  _id: ObjectId
  chat_id: ObjectId
  user_id: ObjectId
  /** Position in the chat, from the chat's counter: the order of the conversation. */
  seq: number
  role: Role
  content: string
  status?: ReplyStatus
  created_at: Date
  updated_at: Date
}

type MessageCopy = Pick<MessageDocument, '_id' | 'role' | 'content' | 'status' | 'created_at'>

interface ChatDocument {
  _id: ObjectId
  user_id: ObjectId
  title: string | null
  created_at: Date
  updated_at: Date
  message_count: number
  /** A copy of the newest message, so the chat list needs no second query. */
  last_message: MessageCopy | null
}

/** A user message stored with the empty reply that will answer it. */
export interface Exchange {
  chatId: ObjectId
  userId: ObjectId
  replyId: ObjectId
  /** The conversation the reply answers, oldest first, ending with the new user message. */
  context: Array<{ role: Role, content: string }>
}

const chatListProjection = { message_count: 0 } as const

function toMessage (doc: MessageCopy): Message {
  const message: Message = { id: doc._id.toHexString(), role: doc.role, content: doc.content, created_at: doc.created_at.toISOString() }
  if (doc.status !== undefined) message.status = doc.status
  return message
}

function chatFields (doc: ChatDocument) {
  return {
    id: doc._id.toHexString(),
    user_id: doc.user_id.toHexString(),
    title: doc.title,
    created_at: doc.created_at.toISOString(),
    updated_at: doc.updated_at.toISOString()
  }
}

function copyOf (doc: MessageDocument): MessageCopy {
  const copy: MessageCopy = { _id: doc._id, role: doc.role, content: doc.content, created_at: doc.created_at }
  if (doc.status !== undefined) copy.status = doc.status
  return copy
}

/**
 * Chats and their messages, always scoped by owner: another user's chat and a malformed id are
 * both simply "not found". Messages live in their own collection so a long chat never meets the
 * 16 MB document limit.
 */
export function createChatsRepository (chats: Collection<ChatDocument>, messages: Collection<MessageDocument>) {
  function newMessage (chatId: ObjectId, userId: ObjectId, seq: number, role: Role, content: string, now: Date, status?: ReplyStatus): MessageDocument {
    const doc: MessageDocument = { _id: new ObjectId(), chat_id: chatId, user_id: userId, seq, role, content, created_at: now, updated_at: now }
    if (status !== undefined) doc.status = status
    else if (role === 'assistant') doc.status = 'complete'
    return doc
  }

  async function messagesOf (chatId: ObjectId): Promise<Message[]> {
    const docs = await messages.find({ chat_id: chatId }, { projection: { role: 1, content: 1, status: 1, created_at: 1 } })
      .sort({ seq: 1 }).toArray()
    return docs.map(toMessage)
  }

  return {
    async ensureIndexes () {
      await chats.createIndex({ user_id: 1, updated_at: -1 }, { name: 'user_recent' })
      await messages.createIndex({ chat_id: 1, seq: 1 }, { unique: true, name: 'chat_order' })
    },

    async create (userId: string, title: string | null, initial: NewMessage[]): Promise<Chat> {
      const owner = new ObjectId(userId)
      const now = new Date()
      const _id = new ObjectId()
      const docs = initial.map((m, i) => newMessage(_id, owner, i + 1, m.role, m.content, now))
      const last = docs.at(-1)
      const chat: ChatDocument = {
        _id, user_id: owner, title, created_at: now, updated_at: now, message_count: docs.length, last_message: last ? copyOf(last) : null
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
      const chat = await chats.findOne({ _id, user_id: new ObjectId(userId) }, { projection: chatListProjection })
      return chat ? { ...chatFields(chat), messages: await messagesOf(_id) } : null
    },

    async rename (userId: string, chatId: string, title: string | null): Promise<Chat | null> {
      const _id = parseObjectId(chatId)
      if (!_id) return null
      const chat = await chats.findOneAndUpdate(
        { _id, user_id: new ObjectId(userId) },
        { $set: { title, updated_at: new Date() } },
        { returnDocument: 'after' } // no projection: FerretDB 1.x refuses one on findAndModify
      )
      return chat ? { ...chatFields(chat), messages: await messagesOf(_id) } : null
    },

    async delete (userId: string, chatId: string): Promise<boolean> {
      const _id = parseObjectId(chatId)
      if (!_id) return false
      const { deletedCount } = await chats.deleteOne({ _id, user_id: new ObjectId(userId) })
      if (deletedCount === 0) return false
      await messages.deleteMany({ chat_id: _id })
      return true
    },

    /**
     * Stores the user's message and an empty `streaming` reply, in a new chat when `chatId` is null.
     * Returns null when the chat is not the caller's. Both are written before any byte is streamed.
     */
    async startExchange (userId: string, chatId: string | null, text: string, newTitle: string | null): Promise<Exchange | null> {
      const owner = new ObjectId(userId)
      const now = new Date()
      let _id: ObjectId
      let userSeq: number
      let context: Exchange['context'] = []
      const userMessageId = new ObjectId()
      const lastMessage: MessageCopy = { _id: userMessageId, role: 'user', content: text, created_at: now }

      if (chatId === null) {
        _id = new ObjectId()
        userSeq = 1
        await chats.insertOne({ _id, user_id: owner, title: newTitle, created_at: now, updated_at: now, message_count: 2, last_message: lastMessage })
      } else {
        const parsed = parseObjectId(chatId)
        if (!parsed) return null
        const chat = await chats.findOneAndUpdate(
          { _id: parsed, user_id: owner },
          { $inc: { message_count: 2 }, $set: { updated_at: now, last_message: lastMessage } },
          { returnDocument: 'after' } // no projection: FerretDB 1.x refuses one on findAndModify
        )
        if (!chat) return null
        _id = parsed
        userSeq = chat.message_count - 1
        const earlier = await messages.find(
          { chat_id: _id, seq: { $lt: userSeq }, status: { $ne: 'streaming' } },
          { projection: { role: 1, content: 1 } }
        ).sort({ seq: 1 }).toArray()
        context = earlier.map((m) => ({ role: m.role, content: m.content }))
      }

      const userMessage = { ...newMessage(_id, owner, userSeq, 'user', text, now), _id: userMessageId }
      const reply = newMessage(_id, owner, userSeq + 1, 'assistant', '', now, 'streaming')
      await messages.insertMany([userMessage, reply])
      context.push({ role: 'user', content: text })
      return { chatId: _id, userId: owner, replyId: reply._id, context }
    },

    /** Stores the reply's final text and status, and makes it the chat's last message. */
    async finishReply (exchange: Exchange, content: string, status: Exclude<ReplyStatus, 'streaming'>) {
      const now = new Date()
      const reply = await messages.findOneAndUpdate(
        { _id: exchange.replyId },
        { $set: { content, status, updated_at: now } },
        { returnDocument: 'after' }
      )
      if (!reply) return // the chat was deleted meanwhile
      await chats.updateOne({ _id: exchange.chatId }, { $set: { updated_at: now, last_message: copyOf(reply) } })
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
}, { name: 'chats-repository', dependencies: ['mongodb', 'database-setup'] })
