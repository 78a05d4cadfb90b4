import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AUTH_BODY_LIMIT, GENERIC_RESET_DETAIL, GENERIC_VERIFICATION_DETAIL, rateLimits } from '../../plugins/app/auth/limits.js'
import { RequestValidationError } from '../../plugins/app/platform/errors.js'
import { EmailBodySchema, EmailQuerySchema } from '../../schemas/auth.js'
import { noSecurity } from '../../plugins/external/swagger.js'
import { bodyProblemResponses, DetailSchema, ref, success } from '../../schemas/common.js'

/**
 * Resend-verification and forgot-password answer the same 200 whatever the address: unknown,
 * verified, throttled or not. Only the per-IP limiter (429) ever says anything else. They do the
 * same work for every address too (a throttle claim, an outbox entry): the outbox worker looks the
 * account up and issues the link, so timing tells nothing either.
 */
const emailRequests: FastifyPluginAsyncTypebox = async (fastify) => {
  const { mailThrottle, mailer } = fastify

  const routeSchema = (operationId: string, summary: string) => ({
    tags: ['Auth'],
    summary,
    description: 'The address as query `?email=` (the original\'s way) or JSON `{ "email" }`. The answer never reveals whether an account exists.',
    operationId,
    security: noSecurity,
    querystring: EmailQuerySchema,
    body: EmailBodySchema,
    response: { 200: success(ref(DetailSchema), 'The same answer whatever the address'), ...bodyProblemResponses() }
  })

  function addressOf (request: { query: { email?: string }, body?: { email?: string } }): string {
    const email = request.query.email ?? request.body?.email
    if (email === undefined) throw new RequestValidationError([{ loc: ['query', 'email'], msg: 'Field required', type: 'missing' }])
    return email
  }

  const requests = [
    { path: '/resend-verification', purpose: 'verify-email', operationId: 'resendVerification', summary: 'Send the verification mail again', detail: GENERIC_VERIFICATION_DETAIL },
    { path: '/forgot-password', purpose: 'reset-password', operationId: 'forgotPassword', summary: 'Send a password reset mail', detail: GENERIC_RESET_DETAIL }
  ] as const

  for (const { path, purpose, operationId, summary, detail } of requests) {
    fastify.post(path, {
      bodyLimit: AUTH_BODY_LIMIT,
      config: rateLimits.mailRequest,
      schema: routeSchema(operationId, summary)
    }, async (request) => {
      const email = addressOf(request)
      if (await mailThrottle.tryAcquire(email, purpose)) await mailer.request(email, purpose, request.id)
      return { detail }
    })
  }
}

export default emailRequests
