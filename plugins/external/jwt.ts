import { randomBytes } from 'node:crypto'
import jwt from '@fastify/jwt'
import fp from 'fastify-plugin'

export const TOKEN_ISSUER = 'chat-auth-api'
export const ACCESS_TOKEN_TYPE = 'at+jwt'

/** Claims of an access token: the user and the session it belongs to. */
export interface AccessClaims {
  sub: string
  sid: string
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessClaims
    user: { id: string, sessionId: string }
  }
}

/** What `request.user` holds for an access token's claims. */
export function userOf (claims: AccessClaims): { id: string, sessionId: string } {
  return { id: claims.sub, sessionId: claims.sid }
}

/**
 * HS256 only, from a static secret: `alg: none`, other algorithms and keys named in the token
 * (jwk, jku, kid...) are never honoured. Issuer, audience and type are fixed and checked.
 */
export default fp(async function jwtPlugin (fastify) {
  const { SECRET_KEY, ACCESS_TOKEN_EXPIRE_MINUTES } = fastify.config
  if (SECRET_KEY === undefined) {
    fastify.log.warn('SECRET_KEY is unset: using a random key, so tokens end with this process')
  }
  await fastify.register(jwt, {
    secret: SECRET_KEY ?? randomBytes(32).toString('base64url'),
    sign: {
      algorithm: 'HS256',
      expiresIn: ACCESS_TOKEN_EXPIRE_MINUTES * 60, // @fastify/jwt reads a number as seconds
      iss: TOKEN_ISSUER,
      aud: TOKEN_ISSUER,
      header: { alg: 'HS256', typ: ACCESS_TOKEN_TYPE }
    },
    verify: {
      algorithms: ['HS256'],
      allowedIss: TOKEN_ISSUER,
      allowedAud: TOKEN_ISSUER,
      checkTyp: ACCESS_TOKEN_TYPE,
      requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub', 'sid'],
      clockTolerance: 30_000,
      // Tokens already verified are looked up by their hash until they expire: no signature,
      // decoding or claim checks again for the next request with the same token. The session
      // behind the token is still checked on every request (plugins/app/authenticate.ts).
      cache: 1000
    },
    formatUser: userOf
  })
}, { name: 'jwt', dependencies: ['env'] })
