import fp from 'fastify-plugin'

/** Frees a slot; safe to call more than once. */
export type ReleaseSlot = () => Promise<void>

export interface SlotHolder {
  userId: string
  replyId: string
  sessionId: string
}

export interface HeldSlot {
  replyId: string
  instance: string
  sessionId: string
}

export interface StreamSlots {
  /** One of the user's MAX_STREAMS_PER_USER slots for this stream, or null when all are taken. */
  acquire (holder: SlotHolder): Promise<ReleaseSlot | null>
  /** The streams holding the user's slots, on every instance. */
  held (userId: string): Promise<HeldSlot[]>
}

declare module 'fastify' {
  interface FastifyInstance {
    streamSlots: StreamSlots
  }
}

/**
 * The per-user stream limit, held in the database so it counts streams on every instance: slot n
 * of a user is a claim (a unique key) naming the stream's reply, instance and session. A start
 * inserts into a slot this process does not hold, which is one round trip while the user has one
 * free; only when every insert is refused does it read the slots, and it takes over those of
 * instances whose heartbeat stopped (and this instance's own that it no longer uses). The claim's
 * expiry, past the longest stream, is the last resort. A release that fails is retried each second.
 */
export default fp(async function streamSlots (fastify) {
  const { claims, config, instance, log } = fastify
  const leaseMs = (config.MAX_STREAM_SECONDS + config.REPLY_STALE_SECONDS) * 1000
  /** Slots this process holds, and releases still to be written. */
  const mine = new Set<string>()
  const unreleased = new Map<string, string>()

  const keysOf = (userId: string) => Array.from({ length: config.MAX_STREAMS_PER_USER }, (_, i) => `stream-slot:${userId}:${i + 1}`)

  /** The keys this process does not hold, in random order, so concurrent starts seldom try the same one. */
  function candidates (userId: string) {
    const keys = keysOf(userId).filter((key) => !mine.has(key))
    for (let i = keys.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1))
      ;[keys[i], keys[j]] = [keys[j]!, keys[i]!]
    }
    return keys
  }

  async function release (key: string, owner: string) {
    try {
      await claims.release(key, owner)
      unreleased.delete(key)
    } catch (error) {
      unreleased.set(key, owner)
      log.warn({ err: { message: (error as Error).message } }, 'stream slot not released; retrying')
    } finally {
      mine.delete(key)
    }
  }

  instance.onBeat(async () => {
    for (const [key, owner] of unreleased) await release(key, owner)
  })

  /** Held slots that may be taken over: expired, or held by a stopped instance or by nobody here. */
  async function reclaimable (keys: string[]) {
    const held = await claims.findAll(keys)
    const now = Date.now()
    const alive = await instance.alive(held.flatMap((claim) => claim.instance ? [claim.instance] : []))
    return held.filter((claim) => claim.expires_at.getTime() <= now || !claim.instance || !alive.has(claim.instance) ||
      (claim.instance === instance.id && !mine.has(claim._id) && !unreleased.has(claim._id)))
  }

  fastify.decorate('streamSlots', {
    async acquire ({ userId, replyId, sessionId }) {
      const details = { instance: instance.id, session: sessionId }
      const until = () => new Date(Date.now() + leaseMs)
      const take = (key: string): ReleaseSlot => {
        mine.add(key)
        let released: Promise<void> | undefined
        return async () => { await (released ??= release(key, replyId)) }
      }
      const keys = candidates(userId)
      for (const key of keys) {
        // Held here while tried, so this process's concurrent starts try other slots.
        if (mine.has(key)) continue
        mine.add(key)
        if (await claims.tryClaim(key, until(), replyId, details).catch((error: unknown) => { mine.delete(key); throw error })) return take(key)
        mine.delete(key)
      }
      for (const claim of await reclaimable(keys)) {
        if (claim.expires_at.getTime() <= Date.now()) {
          if (await claims.tryClaimWindow(claim._id, until(), replyId, details)) return take(claim._id)
        } else if (await claims.release(claim._id, claim.owner!) && await claims.tryClaim(claim._id, until(), replyId, details)) {
          return take(claim._id)
        }
      }
      return null
    },
    async held (userId) {
      const claimsHeld = await claims.findAll(keysOf(userId))
      return claimsHeld.flatMap((claim) => claim.owner && claim.instance && claim.session
        ? [{ replyId: claim.owner, instance: claim.instance, sessionId: claim.session }]
        : [])
    }
  } satisfies StreamSlots)
}, { name: 'stream-slots', dependencies: ['env', 'claims', 'instance'] })
