import cors from '@fastify/cors'
import fp from 'fastify-plugin'

/** `*` answers any origin without credentials; a list answers those origins with credentials. */
export default fp(async function corsPlugin (fastify) {
  const origins = fastify.config.CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean)
  const any = origins.includes('*')
  await fastify.register(cors, {
    origin: any ? '*' : origins,
    credentials: !any,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    exposedHeaders: ['Retry-After', 'X-Request-Id'],
    maxAge: 600
  })
}, { name: 'cors', dependencies: ['env'] })
