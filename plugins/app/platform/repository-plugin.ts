import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Db } from 'mongodb'

interface Repository {
  ensureIndexes (): Promise<void>
}

/**
 * The plugin of a repository: created once per app on its database, its indexes made by database
 * setup (before any request can write), and decorated as `decorator` (plugin name in kebab-case).
 */
export function repositoryPlugin<R extends Repository> (
  decorator: string, create: (db: Db, fastify: FastifyInstance) => R, dependencies: string[] = []
) {
  const name = decorator.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
  return fp(async function repository (fastify) {
    const made = create(fastify.mongo.db!, fastify)
    fastify.databaseSetup.add(`${name} indexes`, () => made.ensureIndexes())
    fastify.decorate<Repository>(decorator, made)
  }, { name, dependencies: ['mongodb', 'database-setup', ...dependencies] })
}
