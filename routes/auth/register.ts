import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ObjectId } from 'mongodb'
import { AUTH_BODY_LIMIT, rateLimits } from '../../plugins/app/auth/limits.js'
import { noSecurity } from '../../plugins/external/swagger.js'
import { RegisterBodySchema } from '../../schemas/auth.js'
import { bodyProblemResponses, ref, success } from '../../schemas/common.js'
import { UserSchema } from '../../schemas/users.js'

const register: FastifyPluginAsyncTypebox = async (fastify) => {
  const { passwordHasher, usersRepository, mailThrottle, linkMails, mailer } = fastify

  fastify.post('/register', {
    bodyLimit: AUTH_BODY_LIMIT,
    config: rateLimits.register,
    schema: {
      tags: ['Auth'],
      summary: 'Create an account',
      description: 'The email is trimmed and lower-cased. A verification mail is sent.',
      operationId: 'register',
      security: noSecurity,
      body: RegisterBodySchema,
      response: { 200: success(ref(UserSchema), 'The new account, not verified yet (200, as the original answered)'), ...bodyProblemResponses(400) }
    }
  }, async (request) => {
    const { email, password } = request.body
    const hash = await passwordHasher.hash(password)
    const user = await usersRepository.create(email, hash)
    request.log.info({ user_id: user.id }, 'user registered')
    await mailThrottle.record(email, 'verify-email')
    await mailer.send(email, await linkMails.issue(new ObjectId(user.id), 'verify-email'))
    return user
  })
}

export default register
