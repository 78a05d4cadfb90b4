/** Access tokens taken apart and made by hand, so every part of one can be wrong on purpose. */
import { createHmac } from 'node:crypto'
import { TEST_SECRET } from './app.js'

export const ISSUER = 'chat-auth-api'

export function base64url (value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}

/** A JWT signed with HMAC over any header and claims. */
export function hmacToken (header: Record<string, unknown>, claims: Record<string, unknown>, secret: string | Buffer = TEST_SECRET, hash = 'sha256') {
  const input = `${base64url(header)}.${base64url(claims)}`
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`
}

/** The claims of a real access token (its `sub` and `sid` name a live session). */
export function claimsOf (token: string): Record<string, unknown> & { sub: string, sid: string } {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'))
}

export function headerOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8'))
}

export const validHeader = { alg: 'HS256', typ: 'at+jwt' }

export function validClaims (sub: string, sid: string) {
  const now = Math.floor(Date.now() / 1000)
  return { sub, sid, iss: ISSUER, aud: ISSUER, iat: now, exp: now + 600 }
}
