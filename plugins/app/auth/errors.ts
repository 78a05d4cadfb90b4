/** The auth domain's refusals: app.ts maps each of these to its problem. */

/** No credentials at all (the original's "Not authenticated"). */
export class NotAuthenticatedError extends Error {
  constructor () { super('Not authenticated') }
}

/** The original's answer for any token that does not stand: bad, expired, revoked, or its user gone. */
export class InvalidTokenError extends Error {
  constructor () { super('Could not validate credentials') }
}

/**
 * An address blocked after too many failed password checks, for this many more seconds: from this
 * IP (`address_and_ip`) or from everywhere (`address`).
 */
export class TooManyFailuresError extends Error {
  constructor (readonly retryAfterSeconds: number, readonly scope: 'address_and_ip' | 'address') {
    super('Too many failed password attempts, try again later')
  }
}

export class EmailTakenError extends Error {
  constructor () { super('User with this email already exists') }
}

/** More password hashes queued than the hasher takes: refused at once rather than left waiting. */
export class HasherBusyError extends Error {
  constructor () { super('Too busy, retry shortly') }
}
