import formbody from '@fastify/formbody'
import fp from 'fastify-plugin'

/** The OAuth2 password form of POST /auth/login. */
export default fp(async function formbodyPlugin (fastify) {
  await fastify.register(formbody, { bodyLimit: 16 * 1024 })
}, { name: 'formbody' })
