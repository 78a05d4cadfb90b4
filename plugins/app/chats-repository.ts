import fp from 'fastify-plugin'
import { ObjectId, type Collection } from 'mongodb'
import { isDuplicateKey } from '../../lib/database-errors.js'
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

/** A streaming reply's text is saved at least this often (which also shows it is alive)... */
export const CHECKPOINT_INTERVAL_MS = 1000
/** ...and sooner once this much new text waits, so a crash loses at most about a second or 1 KB. */
export const CHECKPOINT_CHARS = 1024
/** Stale replies ended per sweep; the next sweep takes the rest. */
const SWEEP_BATCH = 500

/** Saves a streaming reply's text as it grows; `stop` waits for the last write, before the reply is finished. */
export interface ReplyCheckpoints {
  update (text: string): void
  stop (): Promise<void>
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
      // FerretDB 1.x has no partial indexes, which would hold only the few `streaming` replies.
      await messages.createIndex({ status: 1, updated_at: 1 }, { name: 'stale_replies' })
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

    /** Every chat and message of the user (account deletion). */
    async deleteAllOf (userId: ObjectId) {
      await chats.deleteMany({ user_id: userId })
      await messages.deleteMany({ user_id: userId })
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

      const pair = (chat: ObjectId, seq: number) => [
        { ...newMessage(chat, owner, seq, 'user', text, now), _id: userMessageId },
        newMessage(chat, owner, seq + 1, 'assistant', '', now, 'streaming')
      ]
      let reply: MessageDocument

      if (chatId === null) {
        // Messages first: a failure in between leaves unseen messages, never a visible empty chat.
        _id = new ObjectId()
        userSeq = 1
        const docs = pair(_id, userSeq)
        await messages.insertMany(docs)
        reply = docs[1]!
        await chats.insertOne({ _id, user_id: owner, title: newTitle, created_at: now, updated_at: now, message_count: 2, last_message: lastMessage })
      } else {
        const parsed = parseObjectId(chatId)
        if (!parsed) return null
        _id = parsed
        // FerretDB 1.x does not isolate concurrent $inc: two sends may draw the same positions, and
        // the unique (chat, seq) index refuses the second, which then draws again.
        for (let attempt = 1; ; attempt++) {
          const chat = await chats.findOneAndUpdate(
            { _id, user_id: owner },
            { $inc: { message_count: 2 }, $set: { updated_at: now, last_message: lastMessage } },
            { returnDocument: 'after' } // no projection: FerretDB 1.x refuses one on findAndModify
          )
          if (!chat) return null
          userSeq = chat.message_count - 1
          const docs = pair(_id, userSeq)
          try {
            await messages.insertMany(docs)
            reply = docs[1]!
            break
          } catch (error) {
            if (!isDuplicateKey(error) || attempt === 5) throw error
          }
        }
        const earlier = await messages.find(
          { chat_id: _id, seq: { $lt: userSeq }, status: { $ne: 'streaming' } },
          { projection: { role: 1, content: 1 } }
        ).sort({ seq: 1 }).toArray()
        context = earlier.map((m) => ({ role: m.role, content: m.content }))
      }
      context.push({ role: 'user', content: text })
      return { chatId: _id, userId: owner, replyId: reply._id, context }
    },

    /**
     * Checkpoints for a streaming reply: one write every CHECKPOINT_INTERVAL_MS, sooner after
     * CHECKPOINT_CHARS of new text, never more than one at a time. Failures go to `onError`; the
     * stream goes on and the next checkpoint tries again.
     */
    replyCheckpoints (exchange: Exchange, onError: (error: Error) => void): ReplyCheckpoints {
      let text = ''
      let savedLength = 0
      let saving: Promise<void> | undefined
      function save () {
        if (saving) return
        const content = text
        // `status` again: a reply swept while this process could not reach the database is alive after all.
        saving = messages.updateOne({ _id: exchange.replyId }, { $set: { content, status: 'streaming', updated_at: new Date() } })
          .then(() => { savedLength = content.length }, onError)
          .finally(() => { saving = undefined })
      }
      const timer = setInterval(save, CHECKPOINT_INTERVAL_MS)
      timer.unref()
      return {
        update (latest) {
          text = latest
          if (text.length - savedLength >= CHECKPOINT_CHARS) save()
        },
        async stop () {
          clearInterval(timer)
          await saving
        }
      }
    },

    /**
     * Ends replies whose process stopped mid-stream (kill -9, crash): `streaming` with no checkpoint
     * since `staleBefore` become `interrupted`, keeping the last checkpoint's text, and the chat's
     * last message follows when the reply is still the newest. Returns how many were ended; stops
     * early once `signal` aborts (shutdown).
     */
    async sweepStaleReplies (staleBefore: Date, signal?: AbortSignal): Promise<number> {
      const stale = await messages.find({ status: 'streaming', updated_at: { $lt: staleBefore } }, { projection: { _id: 1 } })
        .limit(SWEEP_BATCH).toArray()
      let swept = 0
      for (const { _id } of stale) {
        if (signal?.aborted) break
        // The same condition again: a checkpoint or another instance's sweep may have come first.
        const reply = await messages.findOneAndUpdate(
          { _id, status: 'streaming', updated_at: { $lt: staleBefore } },
          { $set: { status: 'interrupted', updated_at: new Date() } },
          { returnDocument: 'after' }
        )
        if (!reply) continue
        swept++
        await chats.updateOne(
          { _id: reply.chat_id, $or: [{ 'last_message._id': reply._id }, { message_count: reply.seq }] },
          { $set: { last_message: copyOf(reply) } }
        )
      }
      return swept
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
