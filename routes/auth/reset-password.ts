import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { AUTH_BODY_LIMIT, rateLimits } from '../../plugins/app/auth/limits.js'
import { originOf } from '../../plugins/app/auth/security-events.js'
import { RequestValidationError } from '../../plugins/app/platform/errors.js'
import { NewPasswordBodySchema, NewPasswordQuerySchema, ResetBodySchema, TokenParamsSchema } from '../../schemas/auth.js'
import { noSecurity } from '../../plugins/external/swagger.js'
import { bodyProblemResponses, DetailSchema, ref, success } from '../../schemas/common.js'

const resetPassword: FastifyPluginAsyncTypebox = async (fastify) => {
  const { oneTimeTokens, passwordHasher, newPassword, httpErrors } = fastify

  function invalidToken () {
    return httpErrors.badRequest('Invalid or expired reset token')
  }

  /** The token is checked before hashing and consumed after, so only one of racing uses succeeds. */
  async function reset (token: string, password: string, request: FastifyRequest) {
    if (!await oneTimeTokens.isActive(token, 'reset-password')) throw invalidToken()
    const hash = await passwordHasher.hash(password)
    const userId = await oneTimeTokens.consume(token, 'reset-password')
    if (!userId) throw invalidToken()
    await newPassword.store(userId, hash, { event: 'password_reset_completed', origin: originOf(request) })
    request.log.info({ user_id: userId.toHexString() }, 'password reset')
    return { detail: 'Password reset successfully' }
  }

  const common = { tags: ['Auth'], summary: 'Set a new password with a reset link', security: noSecurity }
  const done = success(ref(DetailSchema), 'The password is set; every session of the user is signed out')

  fastify.post('/reset-password/:token', {
    bodyLimit: AUTH_BODY_LIMIT,
    config: rateLimits.tokenUse,
    schema: {
      ...common,
      description: 'The new password as JSON `{ "new_password" }`, or as query `?new_password=` (the original\'s way; never logged).',
      operationId: 'resetPasswordWithLinkToken',
      params: TokenParamsSchema,
      querystring: NewPasswordQuerySchema,
      body: NewPasswordBodySchema,
      response: { 200: done, ...bodyProblemResponses(400) }
    }
  }, async (request) => {
    const newPassword = request.body?.new_password ?? request.query.new_password
    if (newPassword === undefined) throw new RequestValidationError([{ loc: ['body', 'new_password'], msg: 'Field required', type: 'missing' }])
    return await reset(request.params.token, newPassword, request)
  })

  fastify.post('/reset-password', {
    bodyLimit: AUTH_BODY_LIMIT,
    config: rateLimits.tokenUse,
    schema: {
      ...common,
      operationId: 'resetPassword',
      body: ResetBodySchema,
      response: { 200: done, ...bodyProblemResponses(400) }
    }
  }, async (request) => await reset(request.body.token, request.body.new_password, request))
}

export default resetPassword
