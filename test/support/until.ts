import { setTimeout as sleep } from 'node:timers/promises'

type Falsy = null | undefined | false | 0 | ''

/**
 * Polls `probe` every `everyMs` until it returns something truthy, and returns that; throws after
 * `ms`, naming `what` it waited for. The one bounded wait of the tests.
 */
export async function until<T> (probe: () => T | Promise<T>, ms: number, what: string | (() => string), everyMs = 100): Promise<Exclude<T, Falsy>> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value) return value as Exclude<T, Falsy>
    if (Date.now() > deadline) throw new Error(`gave up waiting ${ms} ms for ${typeof what === 'string' ? what : what()}`)
    await sleep(everyMs)
  }
}
