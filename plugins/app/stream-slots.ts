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
 *
 * The held slots are read first (lib/by-id.ts `findByIds`), so a start inserts only into free
 * ones (a duplicate key means a concurrent start was quicker), and a refused start inserts nothing:
 * it reads the slots and their replies.
 */
export default fp(async function streamSlots (fastify) {
  const { claims, chatsRepository, config } = fastify
  const leaseMs = (config.MAX_STREAM_SECONDS + config.REPLY_STALE_SECONDS) * 1000
  const staleMs = config.REPLY_STALE_SECONDS * 1000

  /** In random order, so concurrent starts seldom try the same free slot. */
  function slotKeys (userId: string) {
    const keys = Array.from({ length: config.MAX_STREAMS_PER_USER }, (_, i) => `stream-slot:${userId}:${i + 1}`)
    for (let i = keys.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1))
      ;[keys[i], keys[j]] = [keys[j]!, keys[i]!]
    }
    return keys
  }

  /** Held slots that may be taken over: expired, or naming a reply that stopped checkpointing. */
  async function reclaimable (held: Array<{ _id: string, owner?: string, created_at: Date, expires_at: Date }>) {
    const now = Date.now()
    const expired = held.filter((claim) => claim.expires_at.getTime() <= now)
    // A fresh slot's reply may not be stored yet.
    const settled = held.filter((claim) => claim.owner && claim.expires_at.getTime() > now && now - claim.created_at.getTime() >= staleMs)
    const live = await chatsRepository.liveReplies(settled.map((claim) => new ObjectId(claim.owner)), new Date(now - staleMs))
    return { expired, abandoned: settled.filter((claim) => !live.has(claim.owner!)) }
  }

  fastify.decorate('streamSlots', {
    async acquire (userId, replyId) {
      const owner = replyId.toHexString()
      const until = () => new Date(Date.now() + leaseMs)
      const hold = (key: string): ReleaseSlot => async () => { await claims.release(key, owner) }
      const keys = slotKeys(userId)
      const held = await claims.findAll(keys)
      const taken = new Set(held.map((claim) => claim._id))
      for (const key of keys) {
        if (!taken.has(key) && await claims.tryClaim(key, until(), owner)) return hold(key)
      }
      const { expired, abandoned } = await reclaimable(held)
      for (const claim of expired) {
        if (await claims.tryClaimWindow(claim._id, until(), owner)) return hold(claim._id)
      }
      for (const claim of abandoned) {
        if (await claims.release(claim._id, claim.owner!) && await claims.tryClaim(claim._id, until(), owner)) return hold(claim._id)
      }
      return null
    }
  } satisfies StreamSlots)
}, { name: 'stream-slots', dependencies: ['env', 'claims', 'chats-repository'] })
