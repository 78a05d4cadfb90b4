import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AUTH_BODY_LIMIT, rateLimits } from '../../lib/auth-limits.js'
import { RequestValidationError } from '../../lib/problem.js'
import { LoginBodySchema, TokenSchema } from '../../schemas/auth.js'
import { bodyProblemResponses, ref } from '../../schemas/common.js'

const login: FastifyPluginAsyncTypebox = async (fastify) => {
  const { passwordHasher, usersRepository, sessionsRepository, httpErrors, config } = fastify

  function incorrect () {
    return httpErrors.createError(401, 'Incorrect email or password', { headers: { 'www-authenticate': 'Bearer' } })
  }

  fastify.post('/login', {
    bodyLimit: AUTH_BODY_LIMIT,
    config: rateLimits.login,
    schema: {
      tags: ['Auth'],
      summary: 'Log in (OAuth2 password form)',
      description: 'Form fields `username` (the email) and `password`, or the same as JSON (`email` may replace `username`). ' +
        'A verified email is not required.',
      operationId: 'login',
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: LoginBodySchema,
      response: { 200: ref(TokenSchema), ...bodyProblemResponses(401) }
    }
  }, async (request, reply) => {
    const { password } = request.body
    const email = request.body.username ?? request.body.email
    if (email === undefined) throw new RequestValidationError([{ loc: ['body', 'username'], msg: 'Field required', type: 'missing' }])

    const user = await usersRepository.findCredentials(email)
    if (!user) {
      await passwordHasher.verifyNothing(password)
      request.log.info('login failed: unknown address')
      throw incorrect()
    }
    const check = await passwordHasher.verify(user.password_hash, password)
    if (!check.ok) {
      request.log.info({ user_id: user._id.toHexString() }, 'login failed: wrong password')
      throw incorrect()
    }
    if (check.needsRehash) {
      await usersRepository.upgradePasswordHash(user._id, user.password_hash, await passwordHasher.hash(password))
    }

    const sessionId = await sessionsRepository.create(user._id, { userAgent: request.headers['user-agent'], ip: request.ip })
    const accessToken = await reply.jwtSign({ sub: user._id.toHexString(), sid: sessionId.toHexString() })
    request.log.info({ user_id: user._id.toHexString(), session_id: sessionId.toHexString() }, 'login succeeded')
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    return { access_token: accessToken, token_type: 'bearer' as const, expires_in: config.ACCESS_TOKEN_EXPIRE_MINUTES * 60 }
  })
}

export default login
