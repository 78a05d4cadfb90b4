import fp from 'fastify-plugin'
import { ObjectId, type AnyBulkWriteOperation, type Collection } from 'mongodb'
import { fitContext } from '../assistant/context.js'
import type { ContextMessage } from '../assistant/types.js'
import { findByIds, findOwned } from '../../../../lib/by-id.js'
import { isDuplicateKey } from '../../../../lib/database-errors.js'
import { parseObjectId } from '../../../../lib/object-id.js'
import type { ReplyStatus, Usage } from '../../../../schemas/chat.js'
import { copyOf, newMessage, type ChatDocument, type MessageCopy, type MessageDocument, findOwnChat } from '../documents.js'

export type FinalStatus = Exclude<ReplyStatus, 'streaming'>

/** A user message stored with the empty reply that will answer it (or a new reply replacing the last one). */
export interface Exchange {
  chatId: ObjectId
  userId: ObjectId
  replyId: ObjectId
  replyCreatedAt: Date
  /** What the assistant is given: the system prompt, the earlier messages that fit, the message to answer. */
  context: ContextMessage[]
  /** The chat's model; the provider's default when null. */
  model: string | null
  /** The chat's `updated_at` and last message, written while the reply starts; awaited before it is finished. */
  chatUpdated: Promise<unknown>
}

/** A stored reply as a replay shows it. */
export interface StoredReply {
  chatId: ObjectId
  replyId: ObjectId
  content: string
  status: ReplyStatus
  error?: string
  /** The instance writing it, while it streams. */
  instance?: string
}

export interface SendRequest {
  userId: string
  /** null: a new chat with id `newChatId`. */
  chatId: string | null
  text: string
  title: string | null
  /** The ids the user message and its reply are stored under. */
  questionId: ObjectId
  replyId: ObjectId
  newChatId: ObjectId
  instance: string
  clientMessageId?: string
}

export interface Checkpoint { replyId: ObjectId, content: string, pieces: number }

const storedReplyFields = { chat_id: 1, role: 1, content: 1, status: 1, error: 1, instance: 1 } as const

function storedReplyOf (doc: Pick<MessageDocument, '_id' | 'chat_id' | 'content' | 'status' | 'error' | 'instance'>): StoredReply {
  const stored: StoredReply = { chatId: doc.chat_id, replyId: doc._id, content: doc.content, status: doc.status ?? 'complete' }
  if (doc.error !== undefined) stored.error = doc.error
  if (doc.instance !== undefined) stored.instance = doc.instance
  return stored
}

/** Earlier messages read per round trip, newest first: most chats' context arrives in one. */
const HISTORY_BATCH = 100
const SEND_ATTEMPTS = 5
/**
 * Statements per checkpoint write. FerretDB 1.24 holds one PostgreSQL connection per statement until
 * its `update` command ends, and an `update` of as many statements as its pool (50) never ends.
 */
const CHECKPOINTS_PER_WRITE = 40

/**
 * The storage of one turn of a chat: the user's message and its reply, written before any byte is
 * streamed, the reply's checkpoints, and its final text. Reads and writes go by `_id` or by
 * equality on indexed fields. Positions come from the newest stored message; the unique
 * (chat, seq) index refuses a concurrent send that drew the same ones, and that send draws again.
 */
export function createExchanges (chats: Collection<ChatDocument>, messages: Collection<MessageDocument>, contextChars: number) {
  const ownChat = (userId: string, chatId: string) => findOwnChat(chats, userId, chatId)

  /** The chat's messages, newest first, read in batches (the first one in parallel with the chat). */
  function history (chatId: ObjectId) {
    return messages.find({ chat_id: chatId }, { projection: { seq: 1, role: 1, content: 1, status: 1 } })
      .sort({ seq: -1 }).batchSize(HISTORY_BATCH)
  }

  async function * contextOf (cursor: AsyncIterable<Pick<MessageDocument, 'role' | 'content' | 'status'>>) {
    for await (const m of cursor) if (m.status !== 'streaming' && m.content !== '') yield m
  }

  function updateChat (chatId: ObjectId, last: MessageCopy, seq: number) {
    return chats.updateOne({ _id: chatId }, { $set: { updated_at: last.created_at, last_message: copyOf(last) }, $max: { message_count: seq } })
  }

  function reply (chatId: ObjectId, owner: ObjectId, seq: number, replyId: ObjectId, instance: string, now: Date): MessageDocument {
    return { ...newMessage(chatId, owner, seq, 'assistant', '', now, 'streaming'), _id: replyId, instance, pieces: 0 }
  }

  return {
    /** Stores the user's message and an empty `streaming` reply; null when the chat is not the caller's. */
    async startSend (send: SendRequest): Promise<Exchange | null> {
      const owner = new ObjectId(send.userId)
      const now = new Date()
      const question = {
        ...newMessage(send.newChatId, owner, 1, 'user', send.text, now),
        _id: send.questionId,
        ...(send.clientMessageId !== undefined && { client_message_id: send.clientMessageId })
      }
      const last: ContextMessage = { role: 'user', content: send.text }

      if (send.chatId === null) {
        const chatId = send.newChatId
        // Messages first: a failure in between leaves unseen messages, never a visible empty chat.
        await messages.insertMany([question, reply(chatId, owner, 2, send.replyId, send.instance, now)])
        await chats.insertOne({
          _id: chatId, user_id: owner, title: send.title, system_prompt: null, model: null, created_at: now, updated_at: now, message_count: 2, last_message: copyOf(question)
        })
        return { chatId, userId: owner, replyId: send.replyId, replyCreatedAt: now, context: [last], model: null, chatUpdated: Promise.resolve() }
      }

      for (let attempt = 1; ; attempt++) {
        const chatId = parseObjectId(send.chatId)
        if (!chatId) return null
        const cursor = history(chatId)
        try {
          const [chat, newest] = await Promise.all([ownChat(send.userId, send.chatId), cursor.next()])
          if (!chat) return null
          const seq = (newest?.seq ?? 0) + 1
          const context = await fitContext(chat.system_prompt, contextOf((async function * () {
            if (newest) yield newest
            yield * cursor
          })()), last, contextChars)
          const asked = { ...question, chat_id: chatId, seq }
          try {
            await messages.insertMany([asked, reply(chatId, owner, seq + 1, send.replyId, send.instance, now)])
          } catch (error) {
            if (!isDuplicateKey(error) || attempt === SEND_ATTEMPTS) throw error
            // A concurrent send took one of the two positions: take back the half that landed, draw again.
            await messages.deleteMany({ _id: { $in: [asked._id, send.replyId] }, chat_id: chatId })
            continue
          }
          const chatUpdated = updateChat(chatId, asked, seq + 1)
          chatUpdated.catch(() => {}) // awaited before the reply is finished
          return { chatId, userId: owner, replyId: send.replyId, replyCreatedAt: now, context, model: chat.model ?? null, chatUpdated }
        } finally {
          await cursor.close()
        }
      }
    },

    /**
     * A new `streaming` reply (id `replyId`) answering the chat's last user message, replacing the
     * reply after it if there is one. 'not-found' for a chat that is not the caller's, 'busy' while
     * a reply streams (or a concurrent regeneration won), 'nothing' with no message to answer.
     */
    async startRegeneration (userId: string, chatId: string, replyId: ObjectId, instance: string): Promise<Exchange | 'not-found' | 'busy' | 'nothing'> {
      const _id = parseObjectId(chatId)
      if (!_id) return 'not-found'
      const cursor = history(_id)
      try {
        const [chat, newest] = await Promise.all([ownChat(userId, chatId), cursor.next()])
        if (!chat) return 'not-found'
        if (!newest || newest.role === 'system') return 'nothing'
        if (newest.status === 'streaming') return 'busy'
        let question = newest.role === 'user' ? newest : null
        while (!question) {
          const next = await cursor.next()
          if (!next) return 'nothing'
          if (next.role === 'user') question = next
        }
        const context = await fitContext(chat.system_prompt, contextOf(cursor), { role: 'user', content: question.content }, contextChars)
        const owner = new ObjectId(userId)
        const now = new Date()
        const fresh = reply(_id, owner, newest.seq + 1, replyId, instance, now)
        // Whoever inserts the new reply regenerates; a concurrent one draws the same position and is refused.
        const [inserted] = await Promise.allSettled([
          messages.insertOne(fresh),
          newest.role === 'assistant' ? messages.deleteOne({ _id: newest._id, status: { $ne: 'streaming' } }) : undefined
        ])
        if (inserted.status === 'rejected') {
          if (isDuplicateKey(inserted.reason)) return 'busy'
          throw inserted.reason
        }
        const chatUpdated = updateChat(_id, fresh, fresh.seq)
        chatUpdated.catch(() => {})
        return { chatId: _id, userId: owner, replyId, replyCreatedAt: now, context, model: chat.model ?? null, chatUpdated }
      } finally {
        await cursor.close()
      }
    },

    /**
     * Saves streaming replies' text in as few writes as FerretDB allows (one on MongoDB up to
     * CHECKPOINTS_PER_WRITE replies). A checkpoint lands only on a reply still `streaming` that
     * holds fewer pieces, so one delayed past a newer checkpoint or the final write changes nothing.
     */
    async saveCheckpoints (batch: Checkpoint[]) {
      const now = new Date()
      for (let i = 0; i < batch.length; i += CHECKPOINTS_PER_WRITE) {
        const operations: Array<AnyBulkWriteOperation<MessageDocument>> = batch.slice(i, i + CHECKPOINTS_PER_WRITE).map(({ replyId, content, pieces }) => ({
          updateOne: { filter: { _id: replyId, status: 'streaming', pieces: { $lt: pieces } }, update: { $set: { content, pieces, updated_at: now } } }
        }))
        await messages.bulkWrite(operations, { ordered: false })
      }
    },

    /** Stores the reply's final text and status (and usage, or why it failed); this write always wins. */
    async finishReply (exchange: Exchange, content: string, pieces: number, status: FinalStatus, details: { usage?: Usage, error?: string } = {}) {
      await exchange.chatUpdated.catch(() => {})
      const now = new Date()
      const last: MessageCopy = { _id: exchange.replyId, role: 'assistant', content, status, created_at: exchange.replyCreatedAt }
      await Promise.all([
        messages.updateOne({ _id: exchange.replyId }, { $set: { content, pieces, status, updated_at: now, ...details }, $unset: { instance: '' } }),
        // The owner never changes, and a deleted chat is simply not updated.
        chats.updateOne({ _id: exchange.chatId }, { $set: { updated_at: now, last_message: last } })
      ])
    },

    /** A reply of the user's, for a replay or a resumed stream; null for any other message, or once its chat is gone. */
    async findReply (userId: string, replyId: ObjectId): Promise<StoredReply | null> {
      const found = await findOwned(messages, replyId, new ObjectId(userId), storedReplyFields)
      return found?.role === 'assistant' ? storedReplyOf(found) : null
    },

    /** These replies as stored now (the ones followed on this instance); a deleted one is missing. */
    async findReplies (replyIds: ObjectId[]): Promise<StoredReply[]> {
      return (await findByIds(messages, replyIds, storedReplyFields)).map(storedReplyOf)
    },

    /**
     * The reply now answering a user message of the user's: the first message after it, which a
     * regeneration may have replaced. 'no-question' while it is not stored (or once its chat is
     * gone); 'no-reply' when nothing answers it any more.
     */
    async findAnswer (userId: string, questionId: ObjectId): Promise<StoredReply | 'no-question' | 'no-reply'> {
      const question = await findOwned(messages, questionId, new ObjectId(userId), { chat_id: 1, seq: 1 })
      if (!question) return 'no-question'
      const [next] = await messages.find({ chat_id: question.chat_id, seq: { $gt: question.seq } }, { projection: storedReplyFields })
        .sort({ seq: 1 }).limit(1).toArray()
      return next?.role === 'assistant' ? storedReplyOf(next) : 'no-reply'
    },

    /** The chat's `streaming` replies and the instances writing them; null when the chat is not the caller's. */
    async streamingReplies (userId: string, chatId: string) {
      const chat = await ownChat(userId, chatId)
      if (!chat) return null
      const found = await messages.find({ chat_id: chat._id, status: 'streaming' }, { projection: { instance: 1, updated_at: 1 } }).toArray()
      return found.map((m) => ({ replyId: m._id, instance: m.instance ?? null, updatedAt: m.updated_at }))
    },

    /** Every `streaming` reply (the startup sweep; an index on status keeps it to the few). */
    async allStreaming () {
      return await messages.find({ status: 'streaming' }, { projection: { instance: 1, updated_at: 1 } }).toArray()
    },

    /** The replies `instance` is writing (a reply names its instance only while it streams). */
    async streamingOf (instance: string) {
      return (await messages.find({ instance }, { projection: { _id: 1 } }).toArray()).map((m) => m._id)
    },

    /**
     * Ends replies left `streaming` by a process that stopped: `interrupted`, keeping the last
     * checkpoint's text; the chat's last message follows when the reply is still its newest.
     * Each is checked again by `_id`, so a reply finished meanwhile is left alone.
     */
    async interrupt (replyIds: ObjectId[], signal?: AbortSignal): Promise<number> {
      let ended = 0
      for (const _id of replyIds) {
        if (signal?.aborted) break
        const found = await messages.findOne({ _id })
        if (!found || found.status !== 'streaming') continue
        const now = new Date()
        const { modifiedCount } = await messages.updateOne({ _id, status: 'streaming' }, { $set: { status: 'interrupted', updated_at: now }, $unset: { instance: '' } })
        if (modifiedCount === 0) continue
        ended++
        const chat = await chats.findOne({ _id: found.chat_id }, { projection: { message_count: 1, 'last_message._id': 1 } })
        if (chat && (chat.last_message?._id.equals(_id) || chat.message_count === found.seq)) {
          await chats.updateOne({ _id: chat._id }, { $set: { last_message: copyOf({ ...found, status: 'interrupted' }) } })
        }
      }
      return ended
    }
  }
}

export type Exchanges = ReturnType<typeof createExchanges>

declare module 'fastify' {
  interface FastifyInstance {
    exchanges: Exchanges
  }
}

export default fp(async function exchanges (fastify) {
  const db = fastify.mongo.db!
  const repository = createExchanges(db.collection<ChatDocument>('chats'), db.collection<MessageDocument>('messages'), fastify.config.ASSISTANT_CONTEXT_CHARS)
  fastify.decorate('exchanges', repository)
}, { name: 'exchanges', dependencies: ['env', 'mongodb', 'messages-repository'] })
