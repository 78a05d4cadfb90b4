import { setTimeout as sleep } from 'node:timers/promises'
import { isDatabaseUnavailable } from './database-errors.js'

/**
 * Runs `work`, retrying with doubling delays while the database cannot answer (overloaded pool, a
 * restart). For writes whose data lives only in memory, such as a finished reply. About 8 s in all,
 * so a shutdown still ends within its grace.
 */
export async function retryWhileUnavailable<T> (work: () => Promise<T>, attempts = 6, firstDelayMs = 250): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (error) {
      if (attempt >= attempts || !isDatabaseUnavailable(error)) throw error
      await sleep(firstDelayMs * 2 ** (attempt - 1))
    }
  }
}
