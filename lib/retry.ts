import { setTimeout as sleep } from 'node:timers/promises'
import { isDatabaseUnavailable } from './database-errors.js'

/**
 * Runs `work`, retrying with doubling delays (at most 4 s apart) while the database cannot answer:
 * an overloaded pool, a restart. For writes whose data lives only in memory, such as a finished
 * reply. With the defaults it gives up after about 30 s of waiting.
 */
export async function retryWhileUnavailable<T> (work: () => Promise<T>, attempts = 10, firstDelayMs = 250): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (error) {
      if (attempt >= attempts || !isDatabaseUnavailable(error)) throw error
      await sleep(Math.min(firstDelayMs * 2 ** (attempt - 1), 4000))
    }
  }
}
