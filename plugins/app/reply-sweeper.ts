import fp from 'fastify-plugin'

/** How often stale replies are looked for; a shorter REPLY_STALE_SECONDS looks as often as that. */
const SWEEP_INTERVAL_MS = 30_000

/**
 * Ends the replies that a stopped process (kill -9, crash, power loss) left `streaming`: once at
 * startup, before the service is ready, then periodically. A live stream checkpoints every second,
 * so a reply with no checkpoint for REPLY_STALE_SECONDS has no process behind it, on this instance
 * or any other sharing the database.
 */
export default fp(async function replySweeper (fastify) {
  const staleMs = fastify.config.REPLY_STALE_SECONDS * 1000
  const { chatsRepository, databaseSetup, log } = fastify
  const closing = new AbortController()

  async function sweep () {
    const swept = await chatsRepository.sweepStaleReplies(new Date(Date.now() - staleMs), closing.signal)
    if (swept > 0) log.info({ swept }, 'stale streaming replies marked interrupted')
  }

  databaseSetup.add('stale replies sweep', sweep)

  let timer: NodeJS.Timeout | undefined
  let sweeping: Promise<void> | undefined
  fastify.addHook('onReady', async () => {
    timer = setInterval(() => {
      if (!databaseSetup.done || sweeping) return
      sweeping = sweep()
        .catch((error: Error) => log.warn({ err: { message: error.message } }, 'stale replies sweep failed'))
        .finally(() => { sweeping = undefined })
    }, Math.min(SWEEP_INTERVAL_MS, staleMs))
    timer.unref()
  })
  fastify.addHook('preClose', async () => {
    closing.abort()
    clearInterval(timer)
    await sweeping
  })
}, { name: 'reply-sweeper', dependencies: ['env', 'chats-repository', 'database-setup'] })
