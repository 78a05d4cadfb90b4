import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { userOf, type AccessClaims } from '../../external/jwt.js'
import { InvalidTokenError, NotAuthenticatedError } from './errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook for protected routes: a valid access token of a live session, or 401. */
    authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void>
  }
  interface FastifyRequest {
    /**
     * On routes with `config.deferSessionCheck`: the session check, started by `authenticate` and
     * awaited by the handler (alongside its own first database work). It rejects with the 401.
     */
    sessionCheck?: Promise<void>
  }
  interface FastifyContextConfig {
    /** The handler awaits `request.sessionCheck` itself (chat turns: one round trip with the stream slot). */
    deferSessionCheck?: boolean
  }
}

/**
 * The original's answers: no credentials → "Not authenticated"; anything wrong with the token →
 * "Could not validate credentials". A database failure while checking is a 503, never access.
 */
export default fp(async function authenticate (fastify) {
  const { sessionsRepository } = fastify

  fastify.decorateRequest('sessionCheck', undefined)
  fastify.decorate('authenticate', async function (request: FastifyRequest) {
    const header = request.headers.authorization
    const parts = header?.split(' ') ?? []
    const [scheme, token] = parts
    if (!scheme || scheme.toLowerCase() !== 'bearer' || !token) throw new NotAuthenticatedError()
    try {
      if (parts.length > 2) throw new Error('more than a token after Bearer')
      // The instance's verify, synchronous: request.jwtVerify() decodes the token twice and runs
      // a callback waterfall around the same check.
      request.user = userOf(fastify.jwt.verify<AccessClaims>(token))
    } catch {
      request.log.info('access token rejected')
      throw new InvalidTokenError()
    }
    const check = sessionsRepository.isActive(request.user.sessionId, request.user.id).then((active) => {
      if (active) return
      request.log.info('access token of an ended session')
      throw new InvalidTokenError()
    })
    if (!request.routeOptions.config.deferSessionCheck) return await check
    check.catch(() => {}) // the handler awaits it
    request.sessionCheck = check
  })
}, { name: 'authenticate', dependencies: ['jwt', 'sessions-repository'] })
