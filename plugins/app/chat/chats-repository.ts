import { ObjectId, type Collection } from 'mongodb'
import { findOwned } from '../../../lib/by-id.js'
import { parseObjectId } from '../../../lib/object-id.js'
import type { ChatSettings } from '../../../schemas/chat.js'
import { findOwnChat, type ChatDocument } from './documents.js'
import { repositoryPlugin } from '../platform/repository-plugin.js'

const withoutCount = { message_count: 0 } as const

/**
 * The chats collection, always scoped by owner: another user's chat and a malformed id are both
 * simply "not found". Messages are in their own collection (messages-repository.ts).
 */
export function createChatsRepository (chats: Collection<ChatDocument>) {
  return {
    async ensureIndexes () {
      await chats.createIndex({ user_id: 1, updated_at: -1 }, { name: 'user_recent' })
    },

    /** Every chat of the user (account deletion). */
    async deleteAllOf (userId: ObjectId) {
      await chats.deleteMany({ user_id: userId })
    },

    async insert (chat: ChatDocument) {
      await chats.insertOne(chat)
    },

    /** The user's chats, most recently updated first. */
    async list (userId: ObjectId, skip: number, limit: number) {
      return await chats.find({ user_id: userId }, { projection: withoutCount }).sort({ updated_at: -1, _id: -1 }).skip(skip).limit(limit).toArray()
    },

    async find (userId: string, chatId: string) {
      const _id = parseObjectId(chatId)
      return _id ? await findOwned(chats, _id, new ObjectId(userId), withoutCount) : null
    },

    /** The chat's id and settings when it is the user's. */
    findOwn: (userId: string, chatId: string) => findOwnChat(chats, userId, chatId),

    /** Sets the given title, system prompt and model (a field left out keeps its value). */
    async update (chatId: ObjectId, settings: ChatSettings) {
      // Named fields only: the body may carry others (ignored, as the original's pydantic did).
      const changes: Partial<ChatDocument> = { updated_at: new Date() }
      if (settings.title !== undefined) changes.title = settings.title
      if (settings.system_prompt !== undefined) changes.system_prompt = settings.system_prompt
      if (settings.model !== undefined) changes.model = settings.model
      // The owner never changes, so the update needs only the id (FerretDB: see findOwned).
      // No projection: FerretDB 1.x refuses one on findAndModify.
      return await chats.findOneAndUpdate({ _id: chatId }, { $set: changes }, { returnDocument: 'after' })
    },

    async delete (chatId: ObjectId): Promise<boolean> {
      const { deletedCount } = await chats.deleteOne({ _id: chatId })
      return deletedCount > 0
    },
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    chatsRepository: ReturnType<typeof createChatsRepository>
  }
}

export default repositoryPlugin('chatsRepository', (db, fastify) => {
  const repository = createChatsRepository(db.collection<ChatDocument>('chats'))
  fastify.accountDeletion.add('chats', (userId) => repository.deleteAllOf(userId))
  return repository
}, ['account-deletion'])
