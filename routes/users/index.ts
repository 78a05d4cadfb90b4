import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import { problemResponses, ref } from '../../schemas/common.js'
import { UserSchema } from '../../schemas/users.js'

const users: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository, httpErrors } = fastify

  fastify.get('/me', {
    schema: {
      tags: ['Users'],
      summary: 'The signed-in user',
      operationId: 'getMe',
      security: bearerSecurity,
      response: { 200: ref(UserSchema), ...problemResponses(401) }
    }
  }, async (request) => {
    const user = await usersRepository.findById(request.user.id)
    if (!user) throw httpErrors.createError(401, 'Could not validate credentials', { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } })
    return user
  })
}

export default users
