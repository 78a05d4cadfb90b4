import fp from 'fastify-plugin'
import type { FastifyReply } from 'fastify'
import type { ObjectId } from 'mongodb'
import type { Token } from '../../../schemas/auth.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The token answer of login and refresh: a short-lived access token naming the session, and the refresh token. */
    sessionTokens (reply: FastifyReply, userId: ObjectId, sessionId: ObjectId, refreshToken: string): Promise<Token>
  }
}

export default fp(async function sessionTokens (fastify) {
  const expiresIn = fastify.config.ACCESS_TOKEN_EXPIRE_MINUTES * 60
  fastify.decorate('sessionTokens', async function (reply: FastifyReply, userId: ObjectId, sessionId: ObjectId, refreshToken: string) {
    const accessToken = await reply.jwtSign({ sub: userId.toHexString(), sid: sessionId.toHexString() })
    const { exp } = fastify.jwt.decode<{ exp: number }>(accessToken)!
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    return {
      access_token: accessToken,
      token_type: 'bearer' as const,
      expires_in: expiresIn,
      expires_at: new Date(exp * 1000).toISOString(),
      refresh_token: refreshToken
    }
  })
}, { name: 'session-tokens', dependencies: ['env', 'jwt'] })
