import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import { ObjectId } from 'mongodb'
import type { StoredReply } from './exchanges.js'

/** How long a client_message_id is remembered. */
const REMEMBER_MS = 24 * 3600_000
/** How long an earlier send with the same id may take to store its messages. */
const SETTLE_MS = 10_000
const SETTLE_POLL_MS = 250

export interface ClientMessageIds {
  /**
   * Takes `clientMessageId` for the send writing `replyId` (null), or returns the reply of the
   * earlier send that took it. Scoped to the chat, or to the user's new chats without `chatId`.
   */
  claim (userId: string, chatId: string | null, clientMessageId: string, replyId: ObjectId): Promise<StoredReply | null>
  /** Gives the id up again (the send stored nothing, e.g. its chat was not found). */
  release (userId: string, chatId: string | null, clientMessageId: string, replyId: ObjectId): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    clientMessageIds: ClientMessageIds
  }
}

/**
 * Idempotent sends: the first send with an id inserts a claim (a unique key) naming its reply, so
 * of two concurrent sends exactly one stores messages and calls the provider; the other replays.
 */
export default fp(async function clientMessageIds (fastify) {
  const { claims, exchanges } = fastify
  const keyOf = (userId: string, chatId: string | null, id: string) => `send:${userId}:${chatId ?? 'new'}:${id}`

  fastify.decorate('clientMessageIds', {
    async claim (userId, chatId, clientMessageId, replyId) {
      const key = keyOf(userId, chatId, clientMessageId)
      const deadline = Date.now() + SETTLE_MS
      for (;;) {
        if (await claims.tryClaimWindow(key, new Date(Date.now() + REMEMBER_MS), replyId.toHexString())) return null
        const claim = await claims.find(key)
        if (!claim?.owner) continue // expired just now: claim it
        const earlier = await exchanges.findReply(userId, new ObjectId(claim.owner))
        if (earlier) return earlier
        if (Date.now() - claim.created_at.getTime() < SETTLE_MS && Date.now() < deadline) {
          await sleep(SETTLE_POLL_MS) // the earlier send is still storing its messages
          continue
        }
        // The earlier send stored nothing (its process stopped) or its chat is gone: this send takes the id.
        await claims.release(key, claim.owner)
      }
    },
    async release (userId, chatId, clientMessageId, replyId) {
      await claims.release(keyOf(userId, chatId, clientMessageId), replyId.toHexString())
    }
  } satisfies ClientMessageIds)
}, { name: 'client-message-ids', dependencies: ['claims', 'exchanges'] })
