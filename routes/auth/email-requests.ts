import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AUTH_BODY_LIMIT, GENERIC_RESET_DETAIL, GENERIC_VERIFICATION_DETAIL, rateLimits } from '../../lib/auth-limits.js'
import { RequestValidationError } from '../../lib/problem.js'
import { EmailBodySchema, EmailQuerySchema } from '../../schemas/auth.js'
import { bodyProblemResponses, DetailSchema, ref } from '../../schemas/common.js'

/**
 * Resend-verification and forgot-password answer the same 200 whatever the address: unknown,
 * verified, throttled or not. Only the per-IP limiter (429) ever says anything else.
 */
const emailRequests: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository, mailThrottle, linkMails } = fastify

  const routeSchema = (operationId: string, summary: string) => ({
    tags: ['Auth'],
    summary,
    description: 'The address as query `?email=` (the original\'s way) or JSON `{ "email" }`. The answer never reveals whether an account exists.',
    operationId,
    querystring: EmailQuerySchema,
    body: EmailBodySchema,
    response: { 200: ref(DetailSchema), ...bodyProblemResponses() }
  })

  function addressOf (request: { query: { email?: string }, body?: { email?: string } }): string {
    const email = request.query.email ?? request.body?.email
    if (email === undefined) throw new RequestValidationError([{ loc: ['query', 'email'], msg: 'Field required', type: 'missing' }])
    return email
  }

  fastify.post('/resend-verification', {
    bodyLimit: AUTH_BODY_LIMIT,
    config: rateLimits.mailRequest,
    schema: routeSchema('resendVerification', 'Send the verification mail again')
  }, async (request) => {
    const email = addressOf(request)
    const allowed = await mailThrottle.tryAcquire(email, 'verify-email')
    const user = await usersRepository.findByEmail(email)
    if (allowed && user && !user.is_verified) await linkMails.sendVerification(user._id, email)
    return { detail: GENERIC_VERIFICATION_DETAIL }
  })

  fastify.post('/forgot-password', {
    bodyLimit: AUTH_BODY_LIMIT,
    config: rateLimits.mailRequest,
    schema: routeSchema('forgotPassword', 'Send a password reset mail')
  }, async (request) => {
    const email = addressOf(request)
    const allowed = await mailThrottle.tryAcquire(email, 'reset-password')
    const user = await usersRepository.findByEmail(email)
    if (allowed && user) {
      await linkMails.sendPasswordReset(user._id, email)
      request.log.info({ user_id: user._id.toHexString() }, 'password reset requested')
    }
    return { detail: GENERIC_RESET_DETAIL }
  })
}

export default emailRequests
