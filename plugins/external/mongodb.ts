import mongodb from '@fastify/mongodb'
import fp from 'fastify-plugin'
import { MongoClient } from 'mongodb'

/**
 * Every wait is bounded, so a stalled database turns into a 503 instead of a hung request: server
 * selection, the pool's queue, and each socket read (driver 7 dropped client-side operation
 * timeouts, `timeoutMS`). Writes that back a 2xx are acknowledged by a majority and journaled.
 */
export default fp(async function mongodbPlugin (fastify) {
  const { MONGODB_URL, DATABASE_NAME, DATABASE_TIMEOUT_MS } = fastify.config
  const client = new MongoClient(MONGODB_URL as string, {
    serverSelectionTimeoutMS: Math.min(5000, DATABASE_TIMEOUT_MS),
    connectTimeoutMS: 5000,
    socketTimeoutMS: DATABASE_TIMEOUT_MS,
    waitQueueTimeoutMS: DATABASE_TIMEOUT_MS,
    maxPoolSize: 50,
    writeConcern: { w: 'majority', journal: true },
    appName: 'chat-auth-api'
  })
  await fastify.register(mongodb, { client, database: DATABASE_NAME })
  fastify.addHook('onClose', async () => { await client.close() })
}, { name: 'mongodb', dependencies: ['env'] })
