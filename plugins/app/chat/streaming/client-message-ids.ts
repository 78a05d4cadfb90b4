import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import { ObjectId } from 'mongodb'
import { ChatBusyError, ChatNotFoundError } from '../errors.js'
import type { StoredReply } from './exchanges.js'

/** How long a client_message_id is remembered. */
const REMEMBER_MS = 24 * 3600_000
/** How long an earlier send with the same id may take to store its messages. */
const SETTLE_MS = 10_000
const SETTLE_POLL_MS = 250
/** Reads of a message with no reply after it before the retry is refused (a regeneration replaces replies). */
const NO_REPLY_READS = 3

export interface ClientMessageIds {
  /**
   * Takes `clientMessageId` for the send storing its message as `questionId` (null), or returns
   * the reply now answering the message of the earlier send that took it: the reply it streamed,
   * stopped or failed, or the one a regeneration put in its place. Scoped to the chat, or to the
   * user's new chats without `chatId`.
   */
  claim (userId: string, chatId: string | null, clientMessageId: string, questionId: ObjectId): Promise<StoredReply | null>
  /** Gives the id up again (the send stored nothing, e.g. its chat was not found). */
  release (userId: string, chatId: string | null, clientMessageId: string, questionId: ObjectId): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    clientMessageIds: ClientMessageIds
  }
}

/**
 * Idempotent sends: the first send with an id inserts a claim (a unique key) naming its user
 * message, so of two concurrent sends exactly one stores messages and calls the provider; the
 * other replays. A retry waits only while the earlier send may still be storing its message.
 */
export default fp(async function clientMessageIds (fastify) {
  const { claims, exchanges, chatsRepository } = fastify
  const keyOf = (userId: string, chatId: string | null, id: string) => `send:${userId}:${chatId ?? 'new'}:${id}`

  fastify.decorate('clientMessageIds', {
    async claim (userId, chatId, clientMessageId, questionId) {
      const key = keyOf(userId, chatId, clientMessageId)
      const deadline = Date.now() + SETTLE_MS
      for (let reads = 1; ; reads++) {
        if (await claims.tryClaimWindow(key, new Date(Date.now() + REMEMBER_MS), questionId.toHexString())) return null
        const claim = await claims.find(key)
        if (!claim?.owner) continue // expired just now: claim it
        const answer = await exchanges.findAnswer(userId, new ObjectId(claim.owner))
        if (typeof answer === 'object') return answer
        if (answer === 'no-question' && chatId !== null && !await chatsRepository.findOwn(userId, chatId)) throw new ChatNotFoundError()
        // A message without a reply after it is a moment between two writes (a send storing its pair, a regeneration).
        const storing = Date.now() - claim.created_at.getTime() < SETTLE_MS && Date.now() < deadline
        if (storing || (answer === 'no-reply' && reads < NO_REPLY_READS)) {
          await sleep(SETTLE_POLL_MS)
          continue
        }
        if (answer === 'no-reply') throw new ChatBusyError('This message was sent already and nothing answers it any more; regenerate the reply instead')
        // The earlier send stored nothing (its process stopped): this send takes the id.
        await claims.release(key, claim.owner)
      }
    },
    async release (userId, chatId, clientMessageId, questionId) {
      await claims.release(keyOf(userId, chatId, clientMessageId), questionId.toHexString())
    }
  } satisfies ClientMessageIds)
}, { name: 'client-message-ids', dependencies: ['claims', 'exchanges', 'chats-repository'] })
