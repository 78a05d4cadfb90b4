import fp from 'fastify-plugin'
import { ObjectId } from 'mongodb'

/** Frees a slot; safe to call more than once. */
export type ReleaseSlot = () => Promise<void>

export interface StreamSlots {
  /** One of the user's MAX_STREAMS_PER_USER slots for the stream writing `replyId`, or null when all are taken. */
  acquire (userId: string, replyId: ObjectId): Promise<ReleaseSlot | null>
}

declare module 'fastify' {
  interface FastifyInstance {
    streamSlots: StreamSlots
  }
}

/**
 * The per-user stream limit, held in the database so it counts streams on every instance: slot n
 * of a user is a claim (a unique key) naming the reply it streams. A slot whose reply no longer
 * checkpoints was left by a stopped process and is taken over; the claim's own expiry, past the
 * longest stream, is the last resort.
 */
export default fp(async function streamSlots (fastify) {
  const { claims, chatsRepository, config } = fastify
  const leaseMs = (config.MAX_STREAM_SECONDS + config.REPLY_STALE_SECONDS) * 1000
  const staleMs = config.REPLY_STALE_SECONDS * 1000
  /** In random order, so concurrent starts seldom try the same free slot (n log n inserts to fill n, not n²/2). */
  function slotKeys (userId: string) {
    const keys = Array.from({ length: config.MAX_STREAMS_PER_USER }, (_, i) => `stream-slot:${userId}:${i + 1}`)
    for (let i = keys.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1))
      ;[keys[i], keys[j]] = [keys[j]!, keys[i]!]
    }
    return keys
  }

  async function isAbandoned (claim: { owner?: string, created_at: Date }): Promise<boolean> {
    // A fresh slot's reply may not be stored yet.
    if (!claim.owner || Date.now() - claim.created_at.getTime() < staleMs) return false
    return !await chatsRepository.isReplyLive(new ObjectId(claim.owner), new Date(Date.now() - staleMs))
  }

  fastify.decorate('streamSlots', {
    async acquire (userId, replyId) {
      const owner = replyId.toHexString()
      const keys = slotKeys(userId)
      const held = (key: string): ReleaseSlot => async () => { await claims.release(key, owner) }
      for (const key of keys) {
        if (await claims.tryClaimWindow(key, new Date(Date.now() + leaseMs), owner)) return held(key)
      }
      for (const key of keys) {
        const claim = await claims.find(key)
        if (claim && await isAbandoned(claim) && await claims.release(key, claim.owner!) &&
          await claims.tryClaim(key, new Date(Date.now() + leaseMs), owner)) return held(key)
      }
      return null
    }
  } satisfies StreamSlots)
}, { name: 'stream-slots', dependencies: ['env', 'claims', 'chats-repository'] })
