import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ObjectId } from 'mongodb'
import { InvalidTokenError } from '../../plugins/app/auth/errors.js'
import { rateLimits } from '../../plugins/app/auth/limits.js'
import { originOf } from '../../plugins/app/auth/security-events.js'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import { problemResponses, ref, success } from '../../schemas/common.js'
import { NotMeResultSchema, SecurityEventPageSchema, SecurityEventParamsSchema, SecurityEventsQuerySchema } from '../../schemas/users.js'

/** The account owner's security timeline, and "this wasn't me". */
const events: FastifyPluginAsyncTypebox = async (fastify) => {
  const { securityEvents, sessionEnding, linkMails, mailer, usersRepository, httpErrors } = fastify
  const common = { tags: ['Users'], security: bearerSecurity }

  fastify.get('/me/events', {
    schema: {
      ...common,
      summary: 'The security timeline of the signed-in user',
      description: 'Newest first: sign-ins, failed sign-ins and lockouts (grouped per IP and 15-minute window, with `count` and `last_at`), ' +
        'refresh-token reuse, password changes and resets, verification, ended sessions, "not me" reports. ' +
        'Pass `next_before` as `before` for the next page. Kept `SECURITY_EVENTS_DAYS` days.',
      operationId: 'listSecurityEvents',
      querystring: SecurityEventsQuerySchema,
      response: { 200: success(ref(SecurityEventPageSchema), 'A page of events, newest first'), ...problemResponses(401) }
    }
  }, async (request) => await securityEvents.page(request.user.id, request.query.before, request.query.limit))

  fastify.post('/me/events/:event_id/not-me', {
    config: rateLimits.mailRequest,
    schema: {
      ...common,
      summary: 'Report an event as not yours',
      description: 'Ends every session of the account but this one (with their live streams), voids every open reset link, ' +
        'and mails the owner a summary of the event with a fresh reset link. Each report sends a mail, whose link replaces the previous ones.',
      operationId: 'reportSecurityEvent',
      params: SecurityEventParamsSchema,
      response: { 200: success(NotMeResultSchema, 'Secured; a reset link is on its way'), ...problemResponses(401, 404) }
    }
  }, async (request) => {
    const { id: userId, sessionId } = request.user
    const event = await securityEvents.findOwned(userId, request.params.event_id)
    if (!event) throw httpErrors.notFound('Event not found')
    const owner = new ObjectId(userId)
    const email = await usersRepository.emailOf(owner)
    if (!email) throw new InvalidTokenError()
    const [ended, link] = await Promise.all([
      sessionEnding.endAll(userId, sessionId, 'not_me'),
      // Issuing voids the open reset links of the user, so only the one mailed now works.
      linkMails.issue(owner, 'reset-password')
    ])
    await Promise.all([
      mailer.send(email, { kind: 'not-me', token: link.token, event, sessionsEnded: ended }),
      securityEvents.record(owner, 'not_me_reported', { ...originOf(request), session_id: sessionId, event_id: event.id, count: ended })
    ])
    request.log.warn({ user_id: userId, event_id: event.id, sessions_ended: ended }, 'security event reported as not the owner')
    return { detail: 'Every other session was signed out; a password reset link is on its way.', sessions_ended: ended }
  })
}

export default events
