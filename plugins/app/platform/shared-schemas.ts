import fp from 'fastify-plugin'
import { TokenSchema } from '../../../schemas/auth.js'
import { ChatListItemSchema, ChatSchema, MessagePageSchema, MessageSchema, UsageSchema } from '../../../schemas/chat.js'
import { sharedSchemas } from '../../../schemas/common.js'
import { HealthSchema } from '../../../schemas/health.js'
import { SecurityEventPageSchema, SecurityEventSchema, UserSchema } from '../../../schemas/users.js'

/** Shared entities, referenced by `$id` from route schemas and named so in the OpenAPI document. */
export default fp(async function schemas (fastify) {
  for (const schema of [...sharedSchemas, UserSchema, TokenSchema, UsageSchema, MessageSchema, MessagePageSchema, ChatSchema, ChatListItemSchema, HealthSchema, SecurityEventSchema, SecurityEventPageSchema]) {
    fastify.addSchema(schema)
  }
}, { name: 'schemas' })
