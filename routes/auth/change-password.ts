import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AUTH_BODY_LIMIT, rateLimits } from '../../plugins/app/auth/limits.js'
import { InvalidTokenError } from '../../plugins/app/auth/errors.js'
import { originOf } from '../../plugins/app/auth/security-events.js'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import { ChangePasswordBodySchema } from '../../schemas/auth.js'
import { bodyProblemResponses, DetailSchema, ref, success } from '../../schemas/common.js'

const changePassword: FastifyPluginAsyncTypebox = async (fastify) => {
  const { passwordCheck, passwordHasher, usersRepository, newPassword, httpErrors } = fastify

  fastify.post('/change-password', {
    onRequest: fastify.authenticate,
    bodyLimit: AUTH_BODY_LIMIT,
    config: rateLimits.passwordChange,
    schema: {
      tags: ['Auth'],
      summary: 'Change the password',
      description: 'Every other session of the user is signed out; this one stays valid.',
      operationId: 'changePassword',
      security: bearerSecurity,
      body: ChangePasswordBodySchema,
      response: { 200: success(ref(DetailSchema), 'Changed; the other sessions are signed out'), ...bodyProblemResponses(400, 401, 429) }
    }
  }, async (request) => {
    const { current_password: current, new_password: next } = request.body
    const user = await usersRepository.findCredentialsById(request.user.id)
    if (!user) throw new InvalidTokenError()
    // Wrong current passwords count with failed logins: this is a password check too.
    if (!await passwordCheck.verify(user.email, user, current, request)) {
      request.log.info({ user_id: request.user.id }, 'password change refused: wrong current password')
      throw httpErrors.unauthorized('Current password is incorrect')
    }
    if (current === next) throw httpErrors.badRequest('New password must be different from current password')

    await newPassword.store(user._id, await passwordHasher.hash(next), {
      event: 'password_changed',
      origin: { ...originOf(request), session_id: request.user.sessionId },
      keepSession: request.user.sessionId,
      email: user.email
    })
    request.log.info({ user_id: request.user.id }, 'password changed')
    return { detail: 'Password updated successfully' }
  })
}

export default changePassword
