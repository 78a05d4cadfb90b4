import type { FastifyInstance } from 'fastify'

export default async function chatHooks (fastify: FastifyInstance) {
  fastify.addHook('onRequest', fastify.authenticate)
}
