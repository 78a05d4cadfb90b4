import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AUTH_BODY_LIMIT, rateLimits } from '../../plugins/app/auth/limits.js'
import { originOf } from '../../plugins/app/auth/security-events.js'
import { bearerSecurity, noSecurity } from '../../plugins/external/swagger.js'
import { RefreshBodySchema, TokenSchema } from '../../schemas/auth.js'
import { bodyProblemResponses, noStoreHeader, problemResponses, ref, success } from '../../schemas/common.js'

const noContent = { 204: success(Type.Null(), 'Done') }

/** Refresh-token rotation and logout. Ending a session also ends its live chat streams. */
const sessions: FastifyPluginAsyncTypebox = async (fastify) => {
  const { sessionsRepository, sessionEnding, securityEvents, httpErrors } = fastify

  fastify.post('/refresh', {
    bodyLimit: AUTH_BODY_LIMIT,
    config: rateLimits.tokenUse,
    schema: {
      tags: ['Auth'],
      summary: 'Exchange a refresh token for new tokens',
      description: 'Rotation: the refresh token works once. Presenting an already-rotated one revokes the whole session ' +
        '(parallel refreshes within a few seconds share one rotation).',
      operationId: 'refresh',
      security: noSecurity,
      body: RefreshBodySchema,
      response: { 200: success(ref(TokenSchema), 'New tokens; the refresh token presented works no more', noStoreHeader), ...bodyProblemResponses(401) }
    }
  }, async (request, reply) => {
    const rotation = await sessionsRepository.rotate(request.body.refresh_token)
    if (rotation.outcome === 'reused') {
      request.log.warn({ user_id: rotation.userId.toHexString(), session_id: rotation.sessionId.toHexString() }, 'rotated refresh token reused: session revoked')
      const sessionId = rotation.sessionId.toHexString()
      await Promise.all([
        // The event says the session ended: the rotation revoked it already.
        sessionEnding.end(rotation.userId.toHexString(), sessionId),
        securityEvents.record(rotation.userId, 'refresh_token_reused', { ...originOf(request), session_id: sessionId })
      ])
    }
    if (rotation.outcome !== 'rotated') throw httpErrors.unauthorized('Invalid or expired refresh token')
    return await fastify.sessionTokens(reply, rotation.userId, rotation.sessionId, rotation.refreshToken)
  })

  fastify.post('/logout', {
    onRequest: fastify.authenticate,
    schema: {
      tags: ['Auth'],
      summary: 'End this session',
      description: 'Its access and refresh tokens stop working, and its live chat streams end.',
      operationId: 'logout',
      security: bearerSecurity,
      response: { ...noContent, ...problemResponses(401) }
    }
  }, async (request, reply) => {
    await sessionEnding.end(request.user.id, request.user.sessionId, 'signed_out')
    request.log.info({ user_id: request.user.id, session_id: request.user.sessionId }, 'logged out')
    return reply.code(204).send(null)
  })

  fastify.post('/logout-all', {
    onRequest: fastify.authenticate,
    schema: {
      tags: ['Auth'],
      summary: 'End every session of the user',
      operationId: 'logoutAll',
      security: bearerSecurity,
      response: { ...noContent, ...problemResponses(401) }
    }
  }, async (request, reply) => {
    const ended = await sessionEnding.endAll(request.user.id, undefined, 'signed_out_everywhere')
    request.log.info({ user_id: request.user.id, sessions: ended }, 'logged out everywhere')
    return reply.code(204).send(null)
  })
}

export default sessions
