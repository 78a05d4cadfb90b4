import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { InvalidTokenError } from '../../plugins/app/auth/errors.js'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import { DeleteAccountBodySchema } from '../../schemas/auth.js'
import { bodyProblemResponses, problemResponses, ref, success } from '../../schemas/common.js'
import { UserSchema } from '../../schemas/users.js'

const me: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository, passwordCheck, accountDeletion, httpErrors } = fastify

  fastify.get('/me', {
    schema: {
      tags: ['Users'],
      summary: 'The signed-in user',
      operationId: 'getMe',
      security: bearerSecurity,
      response: { 200: success(ref(UserSchema), 'The user of the token'), ...problemResponses(401) }
    }
  }, async (request) => {
    const user = await usersRepository.findById(request.user.id)
    if (!user) throw new InvalidTokenError()
    return user
  })

  fastify.delete('/me', {
    bodyLimit: 16 * 1024,
    schema: {
      tags: ['Users'],
      summary: 'Delete the account',
      description: 'Needs the password. The user, their sessions, tokens, chats, messages and pending mail are deleted.',
      operationId: 'deleteMe',
      security: bearerSecurity,
      body: DeleteAccountBodySchema,
      response: { 204: success(Type.Null(), 'Deleted, with everything of the user'), ...bodyProblemResponses(401, 429) }
    }
  }, async (request, reply) => {
    const user = await usersRepository.findCredentialsById(request.user.id)
    if (!user) throw new InvalidTokenError()
    if (!await passwordCheck.verify(user.email, user, request.body.password, request)) {
      request.log.info({ user_id: request.user.id }, 'account deletion refused: wrong password')
      throw httpErrors.unauthorized('Incorrect password')
    }
    await accountDeletion.delete(user._id, user.email)
    request.log.info({ user_id: request.user.id }, 'account deleted')
    return reply.code(204).send(null)
  })
}

export default me
