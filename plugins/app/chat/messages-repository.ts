import type { Collection, ObjectId } from 'mongodb'
import { parseObjectId } from '../../../lib/object-id.js'
import type { Message, MessagePage } from '../../../schemas/chat.js'
import { messageProjection, toMessage, type MessageDocument } from './documents.js'
import { repositoryPlugin } from '../platform/repository-plugin.js'

/**
 * The messages collection: a message is its own document, so a long chat never meets the 16 MB
 * document limit. The turns of a streamed conversation are written by streaming/exchanges.ts.
 */
export function createMessagesRepository (messages: Collection<MessageDocument>) {
  return {
    async ensureIndexes () {
      await messages.createIndex({ chat_id: 1, seq: 1 }, { unique: true, name: 'chat_order' })
      // The few `streaming` replies, for the sweeps (FerretDB 1.x has no partial indexes).
      await messages.createIndex({ status: 1 }, { name: 'by_status' })
      await messages.createIndex({ instance: 1 }, { name: 'by_instance' })
    },

    /** Every message of the user (account deletion). */
    async deleteAllOf (userId: ObjectId) {
      await messages.deleteMany({ user_id: userId })
    },

    async deleteOfChat (chatId: ObjectId) {
      await messages.deleteMany({ chat_id: chatId })
    },

    async insert (docs: MessageDocument[]) {
      if (docs.length > 0) await messages.insertMany(docs)
    },

    /** Every message of the chat, in order. */
    async of (chatId: ObjectId): Promise<Message[]> {
      const docs = await messages.find({ chat_id: chatId }, { projection: messageProjection }).sort({ seq: 1 }).toArray()
      return docs.map(toMessage)
    },

    /**
     * A page of the chat's messages, in order, ending just before `before` (or with the newest),
     * and the id to ask for the page before it (null on the first page of the chat); null when
     * `before` is not a message of this chat.
     */
    async page (chatId: ObjectId, before: string | undefined, limit: number): Promise<MessagePage | null> {
      let seq = Number.MAX_SAFE_INTEGER
      if (before !== undefined) {
        const anchorId = parseObjectId(before)
        const anchor = anchorId && await messages.findOne({ _id: anchorId }, { projection: { seq: 1, chat_id: 1 } })
        if (!anchor || !anchor.chat_id.equals(chatId)) return null
        seq = anchor.seq
      }
      const docs = await messages.find({ chat_id: chatId, seq: { $lt: seq } }, { projection: messageProjection })
        .sort({ seq: -1 }).limit(limit + 1).toArray()
      const more = docs.length > limit
      const page = docs.slice(0, limit).reverse()
      return { messages: page.map(toMessage), next_before: more ? page[0]!._id.toHexString() : null }
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    messagesRepository: ReturnType<typeof createMessagesRepository>
  }
}

export default repositoryPlugin('messagesRepository', (db, fastify) => {
  const repository = createMessagesRepository(db.collection<MessageDocument>('messages'))
  fastify.accountDeletion.add('messages', (userId) => repository.deleteAllOf(userId))
  return repository
}, ['account-deletion'])
