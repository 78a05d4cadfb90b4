import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import { problemResponses, success } from '../../schemas/common.js'
import { SessionSchema, SessionParamsSchema } from '../../schemas/users.js'

/** The user's live sessions, and ending one of them (with its live chat streams). */
const sessions: FastifyPluginAsyncTypebox = async (fastify) => {
  const { sessionsRepository, sessionEnding, httpErrors } = fastify
  const common = { tags: ['Users'], security: bearerSecurity }

  fastify.get('/me/sessions', {
    schema: {
      ...common,
      summary: 'The live sessions of the signed-in user',
      operationId: 'listSessions',
      response: { 200: success(Type.Array(SessionSchema), 'The sessions, the current one marked'), ...problemResponses(401) }
    }
  }, async (request) => await sessionsRepository.list(request.user.id, request.user.sessionId))

  fastify.delete('/me/sessions/:session_id', {
    schema: {
      ...common,
      summary: 'End one session',
      operationId: 'deleteSession',
      params: SessionParamsSchema,
      response: { 204: success(Type.Null(), 'Ended; its tokens work no more'), ...problemResponses(401, 404) }
    }
  }, async (request, reply) => {
    const { session_id: sessionId } = request.params
    if (!await sessionEnding.end(request.user.id, sessionId, 'revoked')) throw httpErrors.notFound('Session not found')
    request.log.info({ user_id: request.user.id, session_id: sessionId }, 'session ended by its user')
    return reply.code(204).send(null)
  })
}

export default sessions
