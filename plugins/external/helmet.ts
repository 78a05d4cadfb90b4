import helmet from '@fastify/helmet'
import fp from 'fastify-plugin'

/**
 * Security headers. The API itself serves only JSON, so its policy forbids everything; Swagger UI
 * sets its own, looser policy on /docs.
 */
export default fp(async function helmetPlugin (fastify) {
  await fastify.register(helmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-site' }
  })
}, { name: 'helmet' })
