import type { FastifyInstance } from 'fastify'

export default async function usersHooks (fastify: FastifyInstance) {
  fastify.addHook('onRequest', fastify.authenticate)
}
