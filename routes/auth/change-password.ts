import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AUTH_BODY_LIMIT, rateLimits } from '../../lib/auth-limits.js'
import { InvalidTokenError } from '../../plugins/app/authenticate.js'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import { ChangePasswordBodySchema } from '../../schemas/auth.js'
import { bodyProblemResponses, DetailSchema, ref, success } from '../../schemas/common.js'

const changePassword: FastifyPluginAsyncTypebox = async (fastify) => {
  const { passwordHasher, usersRepository, sessionsRepository, oneTimeTokens, loginThrottle, liveStreams, mailer, httpErrors } = fastify

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
    await loginThrottle.assertAllowed(user.email, request.log, user._id)
    if (!(await passwordHasher.verify(user.password_hash, current)).ok) {
      await loginThrottle.recordFailure(user.email)
      request.log.info({ user_id: request.user.id }, 'password change refused: wrong current password')
      throw httpErrors.unauthorized('Current password is incorrect')
    }
    if (current === next) throw httpErrors.badRequest('New password must be different from current password')

    await usersRepository.setPasswordHash(user._id, await passwordHasher.hash(next))
    await liveStreams.endSessions(request.user.id, await sessionsRepository.revokeAll(user._id, request.user.sessionId))
    await oneTimeTokens.voidActive(user._id, 'reset-password')
    await mailer.send(user.email, { kind: 'password-changed' })
    request.log.info({ user_id: request.user.id }, 'password changed')
    return { detail: 'Password updated successfully' }
  })
}

export default changePassword
