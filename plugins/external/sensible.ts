import sensible from '@fastify/sensible'
import fp from 'fastify-plugin'

export default fp(async function sensiblePlugin (fastify) {
  await fastify.register(sensible)
}, { name: 'sensible' })
