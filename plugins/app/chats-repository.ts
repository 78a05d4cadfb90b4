import fp from 'fastify-plugin'
import { ObjectId, type Collection } from 'mongodb'
import { isDuplicateKey } from '../../lib/database-errors.js'
import { findByIds, findOwned } from '../../lib/by-id.js'
import { parseObjectId } from '../../lib/object-id.js'
import type { ContextMessage, Usage } from '../../lib/assistants/types.js'
import type { Chat, ChatListItem, ChatSettings, Message, MessagePage, NewMessage, ReplyStatus, Role } from '../../schemas/chat.js'

interface MessageDocument {
  _id: ObjectId
  chat_id: ObjectId
  user_id: ObjectId
  /** Position in the chat, from the chat's counter: the order of the conversation. */
  seq: number
  role: Role
  content: string
  status?: ReplyStatus
  /** The sender's id for the message, which makes a retried send idempotent. */
  client_message_id?: string
  /** Replies: what the provider counted, why it failed, and whether a stop was asked for. */
  usage?: Usage
  error?: string
  stop_requested?: boolean
  created_at: Date
  updated_at: Date
}

type MessageCopy = Pick<MessageDocument, '_id' | 'role' | 'content' | 'status' | 'created_at'>

interface ChatDocument {
  _id: ObjectId
  user_id: ObjectId
  title: string | null
  /** Absent on chats stored before these settings existed: read as null. */
  system_prompt?: string | null
  model?: string | null
  created_at: Date
  updated_at: Date
  message_count: number
  /** A copy of the newest message, so the chat list needs no second query. */
  last_message: MessageCopy | null
}

/** A user message stored with the empty reply that will answer it (or a reply reset to be written again). */
export interface Exchange {
  chatId: ObjectId
  userId: ObjectId
  replyId: ObjectId
  /** What the assistant is given: the system prompt, the earlier messages that fit, the message to answer. */
  context: ContextMessage[]
  /** The chat's model; the provider's default when null. */
  model: string | null
}

/** Ids a send chooses before storing anything, so an idempotency claim can name them. */
export interface ExchangeIds {
  replyId: ObjectId
  /** The chat to create when the send names none. */
  newChatId: ObjectId
}

/** A stored reply as a replay shows it. */
export interface StoredReply {
  chatId: ObjectId
  replyId: ObjectId
  content: string
  status: ReplyStatus
  error?: string
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

function toMessage (doc: MessageCopy & { usage?: Usage }): Message {
  const message: Message = { id: doc._id.toHexString(), role: doc.role, content: doc.content, created_at: doc.created_at.toISOString() }
  if (doc.status !== undefined) message.status = doc.status
  if (doc.usage !== undefined) message.usage = doc.usage
  return message
}

const messageProjection = { role: 1, content: 1, status: 1, usage: 1, created_at: 1 } as const

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
export function createChatsRepository (chats: Collection<ChatDocument>, messages: Collection<MessageDocument>, options: { contextChars: number }) {
  function newMessage (chatId: ObjectId, userId: ObjectId, seq: number, role: Role, content: string, now: Date, status?: ReplyStatus): MessageDocument {
    const doc: MessageDocument = { _id: new ObjectId(), chat_id: chatId, user_id: userId, seq, role, content, created_at: now, updated_at: now }
    if (status !== undefined) doc.status = status
    else if (role === 'assistant') doc.status = 'complete'
    return doc
  }

  async function messagesOf (chatId: ObjectId): Promise<Message[]> {
    const docs = await messages.find({ chat_id: chatId }, { projection: messageProjection }).sort({ seq: 1 }).toArray()
    return docs.map(toMessage)
  }

  /**
   * The system prompt, the earlier messages before `seq` that fit in ASSISTANT_CONTEXT_CHARS
   * (newest kept, oldest dropped first), then the message to answer. The system prompt and that
   * message always go, whatever their size. Read newest first, so a long chat is not read whole.
   */
  async function contextFor (chat: Pick<ChatDocument, '_id' | 'system_prompt'>, seq: number, last: ContextMessage): Promise<ContextMessage[]> {
    const system = chat.system_prompt ? [{ role: 'system' as const, content: chat.system_prompt }] : []
    let budget = options.contextChars - (system[0]?.content.length ?? 0) - last.content.length
    const earlier: ContextMessage[] = []
    const cursor = messages.find(
      { chat_id: chat._id, seq: { $lt: seq }, status: { $ne: 'streaming' }, content: { $ne: '' } },
      { projection: { role: 1, content: 1 } }
    ).sort({ seq: -1 }).batchSize(50)
    try {
      for await (const m of cursor) {
        budget -= m.content.length
        if (budget < 0) break
        earlier.push({ role: m.role, content: m.content })
      }
    } finally {
      await cursor.close()
    }
    return [...system, ...earlier.reverse(), last]
  }

  /** The caller's chat, or null (another user's, unknown or malformed id). */
  async function ownChat (userId: string, chatId: string) {
    const _id = parseObjectId(chatId)
    return _id ? await findOwned(chats, _id, new ObjectId(userId), { _id: 1, system_prompt: 1, model: 1 }) : null
  }

  return {
    async ensureIndexes () {
      await chats.createIndex({ user_id: 1, updated_at: -1 }, { name: 'user_recent' })
      await messages.createIndex({ chat_id: 1, seq: 1 }, { unique: true, name: 'chat_order' })
      // FerretDB 1.x has no partial indexes, which would hold only the few `streaming` replies.
      await messages.createIndex({ status: 1, updated_at: 1 }, { name: 'stale_replies' })
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
     * Stores the user's message and an empty `streaming` reply, in a new chat when `chatId` is null.
     * Returns null when the chat is not the caller's. Both are written before any byte is streamed.
     */
    async startExchange (userId: string, chatId: string | null, text: string, newTitle: string | null,
      ids: ExchangeIds = { replyId: new ObjectId(), newChatId: new ObjectId() }, clientMessageId?: string): Promise<Exchange | null> {
      const owner = new ObjectId(userId)
      const now = new Date()
      const userMessageId = new ObjectId()
      const lastMessage: MessageCopy = { _id: userMessageId, role: 'user', content: text, created_at: now }

      const pair = (chat: ObjectId, seq: number) => {
        const question = { ...newMessage(chat, owner, seq, 'user', text, now), _id: userMessageId }
        if (clientMessageId !== undefined) question.client_message_id = clientMessageId
        return [question, { ...newMessage(chat, owner, seq + 1, 'assistant', '', now, 'streaming'), _id: ids.replyId }]
      }

      if (chatId === null) {
        // Messages first: a failure in between leaves unseen messages, never a visible empty chat.
        const _id = ids.newChatId
        await messages.insertMany(pair(_id, 1))
        await chats.insertOne({
          _id, user_id: owner, title: newTitle, system_prompt: null, model: null, created_at: now, updated_at: now, message_count: 2, last_message: lastMessage
        })
        return { chatId: _id, userId: owner, replyId: ids.replyId, context: [{ role: 'user', content: text }], model: null }
      }

      const _id = parseObjectId(chatId)
      if (!_id || !await ownChat(userId, chatId)) return null
      // FerretDB 1.x does not isolate concurrent $inc: two sends may draw the same positions, and
      // the unique (chat, seq) index refuses the second, which then draws again.
      for (let attempt = 1; ; attempt++) {
        const chat = await chats.findOneAndUpdate(
          { _id }, // owned, checked above: the owner never changes
          { $inc: { message_count: 2 }, $set: { updated_at: now, last_message: lastMessage } },
          { returnDocument: 'after' } // no projection: FerretDB 1.x refuses one on findAndModify
        )
        if (!chat) return null
        const userSeq = chat.message_count - 1
        try {
          await messages.insertMany(pair(_id, userSeq))
        } catch (error) {
          if (!isDuplicateKey(error) || attempt === 5) throw error
          continue
        }
        const context = await contextFor(chat, userSeq, { role: 'user', content: text })
        return { chatId: _id, userId: owner, replyId: ids.replyId, context, model: chat.model ?? null }
      }
    },

    /**
     * Replaces the chat's last reply with a new, empty `streaming` one (id `replyId`) that answers
     * the last user message; after a user message, the reply is added. Returns 'not-found' for a
     * chat that is not the caller's, 'busy' while a reply streams, 'nothing' with no message to answer.
     */
    async startRegeneration (userId: string, chatId: string, replyId: ObjectId): Promise<Exchange | 'not-found' | 'busy' | 'nothing'> {
      const chat = await ownChat(userId, chatId)
      if (!chat) return 'not-found'
      const owner = new ObjectId(userId)
      const [last] = await messages.find({ chat_id: chat._id }).sort({ seq: -1 }).limit(1).toArray()
      if (!last || last.role === 'system') return 'nothing'
      if (last.status === 'streaming') return 'busy'
      const question = last.role === 'user'
        ? last
        : await messages.findOne({ chat_id: chat._id, seq: { $lt: last.seq }, role: 'user' }, { sort: { seq: -1 }, projection: { seq: 1, content: 1 } })
      if (!question) return 'nothing'

      const now = new Date()
      const reply = newMessage(chat._id, owner, last.role === 'user' ? last.seq + 1 : last.seq, 'assistant', '', now, 'streaming')
      reply._id = replyId
      if (last.role === 'assistant') {
        // Whoever removes the old reply regenerates; a concurrent request finds nothing to remove.
        const { deletedCount } = await messages.deleteOne({ _id: last._id, status: { $ne: 'streaming' } })
        if (deletedCount === 0) return 'busy'
      }
      try {
        await messages.insertOne(reply)
      } catch (error) {
        if (isDuplicateKey(error)) return 'busy'
        throw error
      }
      await chats.updateOne({ _id: chat._id }, {
        $set: { updated_at: now, last_message: copyOf(reply) },
        ...(last.role === 'user' ? { $inc: { message_count: 1 } } : {})
      })
      const context = await contextFor(chat, question.seq, { role: 'user', content: question.content })
      return { chatId: chat._id, userId: owner, replyId, context, model: chat.model ?? null }
    },

    /** A reply of the user's, for replaying an idempotent send; null once its chat is gone. */
    async findReply (userId: string, replyId: ObjectId): Promise<StoredReply | null> {
      const reply = await findOwned(messages, replyId, new ObjectId(userId), { chat_id: 1, content: 1, status: 1, error: 1 })
      if (!reply) return null
      const stored: StoredReply = { chatId: reply.chat_id, replyId: reply._id, content: reply.content, status: reply.status ?? 'complete' }
      if (reply.error !== undefined) stored.error = reply.error
      return stored
    },

    /** Which of these replies are still being written by a live process (checkpointed since `staleBefore`). */
    async liveReplies (replyIds: ObjectId[], staleBefore: Date): Promise<Set<string>> {
      const replies = await findByIds(messages, replyIds, { status: 1, updated_at: 1 })
      const live = replies.filter((reply) => reply.status === 'streaming' && reply.updated_at >= staleBefore)
      return new Set(live.map((reply) => reply._id.toHexString()))
    },

    /**
     * Asks every live reply of the chat to stop: the instance streaming it notices the mark.
     * Returns their ids, or null when the chat is not the caller's.
     */
    async requestStop (userId: string, chatId: string, staleBefore: Date): Promise<ObjectId[] | null> {
      const chat = await ownChat(userId, chatId)
      if (!chat) return null
      const live = await messages.find(
        { chat_id: chat._id, status: 'streaming', updated_at: { $gte: staleBefore } }, { projection: { _id: 1 } }
      ).toArray()
      const ids = live.map((m) => m._id)
      if (ids.length > 0) await messages.updateMany({ _id: { $in: ids } }, { $set: { stop_requested: true } })
      return ids
    },

    /** Those of `replyIds` that someone asked to stop. */
    async findStopRequested (replyIds: ObjectId[]): Promise<string[]> {
      const docs = await messages.find({ _id: { $in: replyIds }, stop_requested: true }, { projection: { _id: 1 } }).toArray()
      return docs.map((d) => d._id.toHexString())
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
        // Checked again by _id alone, then written by _id alone (FerretDB: see lib/by-id.ts). A
        // checkpoint landing in between sets `streaming` again, and the stream's own final write
        // always wins, so a race can only show a live reply as interrupted for a moment.
        const reply = await messages.findOne({ _id })
        if (!reply || reply.status !== 'streaming' || reply.updated_at >= staleBefore) continue
        const ended = { ...reply, status: 'interrupted' as const, updated_at: new Date() }
        await messages.updateOne({ _id }, { $set: { status: ended.status, updated_at: ended.updated_at } })
        swept++
        const chat = await chats.findOne({ _id: reply.chat_id }, { projection: { message_count: 1, 'last_message._id': 1 } })
        if (chat && (chat.last_message?._id.equals(reply._id) || chat.message_count === reply.seq)) {
          await chats.updateOne({ _id: chat._id }, { $set: { last_message: copyOf(ended) } })
        }
      }
      return swept
    },

    /** Stores the reply's final text and status (and usage, or why it failed), and makes it the chat's last message. */
    async finishReply (exchange: Exchange, content: string, status: Exclude<ReplyStatus, 'streaming'>, details: { usage?: Usage, error?: string } = {}) {
      const now = new Date()
      const reply = await messages.findOneAndUpdate(
        { _id: exchange.replyId },
        { $set: { content, status, updated_at: now, ...details } },
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
  const repository = createChatsRepository(db.collection<ChatDocument>('chats'), db.collection<MessageDocument>('messages'),
    { contextChars: fastify.config.ASSISTANT_CONTEXT_CHARS })
  fastify.databaseSetup.add('chats indexes', () => repository.ensureIndexes())
  fastify.decorate('chatsRepository', repository)
}, { name: 'chats-repository', dependencies: ['env', 'mongodb', 'database-setup'] })
