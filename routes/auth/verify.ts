import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AUTH_BODY_LIMIT, rateLimits } from '../../plugins/app/auth/limits.js'
import { TokenBodySchema, TokenParamsSchema } from '../../schemas/auth.js'
import { noSecurity } from '../../plugins/external/swagger.js'
import { bodyProblemResponses, DetailSchema, problemResponses, ref, success } from '../../schemas/common.js'

const verify: FastifyPluginAsyncTypebox = async (fastify) => {
  const { oneTimeTokens, usersRepository, mailer, securityEvents, httpErrors } = fastify

  /** A link that worked keeps answering 200 (web clients in development mode call it twice). */
  async function verifyEmail (token: string) {
    const userId = await oneTimeTokens.consume(token, 'verify-email')
    if (userId) {
      const email = await usersRepository.markVerified(userId)
      if (email) await Promise.all([mailer.send(email, { kind: 'email-verified' }), securityEvents.record(userId, 'email_verified')])
      return { detail: 'Email verified successfully' }
    }
    if (await oneTimeTokens.findConsumed(token, 'verify-email')) return { detail: 'Email verified successfully' }
    throw httpErrors.badRequest('Invalid or expired verification token')
  }

  const common = { tags: ['Auth'], summary: 'Verify an email address', security: noSecurity }
  const verified = success(ref(DetailSchema), 'Verified (also when the link was used before)')

  fastify.get('/verify/:token', {
    config: rateLimits.tokenUse,
    schema: {
      ...common,
      description: 'The link of the verification mail. Prefer POST /auth/verify, which keeps the token out of URLs.',
      operationId: 'verifyEmailLink',
      params: TokenParamsSchema,
      response: { 200: verified, ...problemResponses(400) }
    }
  }, async (request) => await verifyEmail(request.params.token))

  fastify.post('/verify', {
    bodyLimit: AUTH_BODY_LIMIT,
    config: rateLimits.tokenUse,
    schema: {
      ...common,
      operationId: 'verifyEmail',
      body: TokenBodySchema,
      response: { 200: verified, ...bodyProblemResponses(400) }
    }
  }, async (request) => await verifyEmail(request.body.token))
}

export default verify
