import argon2 from 'argon2'
import fp from 'fastify-plugin'
import pLimit from 'p-limit'
import { Gauge } from 'prom-client'
import { HasherBusyError } from './errors.js'

export interface PasswordCheck {
  ok: boolean
  /** The stored hash was made with other parameters than the current ones. */
  needsRehash: boolean
}

export interface PasswordHasher {
  hash (password: string): Promise<string>
  verify (hash: string, password: string): Promise<PasswordCheck>
  /** Spends the same time as verify() against a real hash, for addresses that have none. */
  verifyNothing (password: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    passwordHasher: PasswordHasher
  }
}

/** Queued hashes beyond this answer 503 at once rather than waiting behind a flood. */
const MAX_QUEUED = 200

/**
 * argon2id on the libuv pool, at most ARGON2_MAX_CONCURRENCY at a time so a burst of logins leaves
 * threads (and memory) for everything else.
 */
export default fp(async function passwordHasher (fastify) {
  const { ARGON2_MEMORY_KIB, ARGON2_TIME_COST, ARGON2_PARALLELISM, ARGON2_MAX_CONCURRENCY } = fastify.config
  const params = { type: argon2.argon2id as 0 | 1 | 2, memoryCost: ARGON2_MEMORY_KIB, timeCost: ARGON2_TIME_COST, parallelism: ARGON2_PARALLELISM }
  const limit = pLimit(ARGON2_MAX_CONCURRENCY)
  fastify.metrics.registerMetric(new Gauge({
    name: 'password_hashes',
    help: 'argon2 hashes running and queued on this instance',
    labelNames: ['state'] as const,
    registers: [],
    collect () {
      this.set({ state: 'running' }, limit.activeCount)
      this.set({ state: 'queued' }, limit.pendingCount)
    }
  }))

  function run<T> (work: () => Promise<T>): Promise<T> {
    if (limit.pendingCount >= MAX_QUEUED) throw new HasherBusyError()
    return limit(work)
  }

  const dummyHash = await argon2.hash('dummy password, never matches', params)

  fastify.decorate('passwordHasher', {
    hash: (password) => run(() => argon2.hash(password, params)),
    async verify (hash, password) {
      const ok = await run(() => argon2.verify(hash, password))
      return { ok, needsRehash: ok && argon2.needsRehash(hash, params) }
    },
    async verifyNothing (password) {
      await run(() => argon2.verify(dummyHash, password))
    }
  } satisfies PasswordHasher)
}, { name: 'password-hasher', dependencies: ['env', 'metrics'] })
