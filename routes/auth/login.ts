import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AUTH_BODY_LIMIT, rateLimits } from '../../plugins/app/auth/limits.js'
import { originOf } from '../../plugins/app/auth/security-events.js'
import { RequestValidationError } from '../../plugins/app/platform/errors.js'
import { documentBodyAs, noSecurity } from '../../plugins/external/swagger.js'
import { LoginBodySchema, LoginFormSchema, TokenSchema } from '../../schemas/auth.js'
import { bodyProblemResponses, noStoreHeader, ref, success } from '../../schemas/common.js'

const login: FastifyPluginAsyncTypebox = async (fastify) => {
  const { passwordCheck, usersRepository, sessionsRepository, securityEvents, httpErrors } = fastify

  function incorrect () {
    return httpErrors.createError(401, 'Incorrect email or password', { headers: { 'www-authenticate': 'Bearer' } })
  }

  fastify.post('/login', {
    bodyLimit: AUTH_BODY_LIMIT,
    // The document offers the OAuth2 form, which generated clients then send; JSON works too.
    config: { ...rateLimits.login, swaggerTransform: documentBodyAs('application/x-www-form-urlencoded', LoginFormSchema) },
    schema: {
      tags: ['Auth'],
      summary: 'Log in (OAuth2 password form)',
      description: 'Form fields `username` (the email) and `password`, or the same as JSON (`email` may replace `username`). ' +
        'A verified email is not required. After too many failures for one address, 429 until the 15-minute window passes.',
      operationId: 'login',
      security: noSecurity,
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: LoginBodySchema,
      response: { 200: success(ref(TokenSchema), 'Signed in: a new session', noStoreHeader), ...bodyProblemResponses(401, 429) }
    }
  }, async (request, reply) => {
    const { password } = request.body
    const email = request.body.username ?? request.body.email
    if (email === undefined) throw new RequestValidationError([{ loc: ['body', 'username'], msg: 'Field required', type: 'missing' }])

    const user = await usersRepository.findCredentials(email)
    const verified = await passwordCheck.verify(email, user, password, request)
    if (!user || !verified) {
      if (user) request.log.info({ user_id: user._id.toHexString() }, 'login failed: wrong password')
      else request.log.info('login failed: unknown address')
      throw incorrect()
    }
    const { sessionId, refreshToken } = await sessionsRepository.create(user._id, { userAgent: request.headers['user-agent'], ip: request.ip })
    // A new password, a reset or a deletion may have landed while the password was checked. One that
    // lands after this read ends this session itself (it ends every session after moving the version).
    const [holds, eventId] = await Promise.all([
      usersRepository.holdsCredentials(user._id, user.credentials_version),
      securityEvents.record(user._id, 'signed_in', { ...originOf(request), session_id: sessionId.toHexString() })
    ])
    if (!holds) {
      await Promise.all([sessionsRepository.revoke(user._id.toHexString(), sessionId.toHexString()), securityEvents.remove(eventId)])
      request.log.info({ user_id: user._id.toHexString() }, 'login failed: the password changed meanwhile')
      throw incorrect()
    }
    request.log.info({ user_id: user._id.toHexString(), session_id: sessionId.toHexString() }, 'login succeeded')
    return await fastify.sessionTokens(reply, user._id, sessionId, refreshToken)
  })
}

export default login
