/** Auth bodies are small: a generous bound that still refuses floods early. */
export const AUTH_BODY_LIMIT = 16 * 1024

/** Per-IP request limits of the auth routes (applied only when RATE_LIMIT_ENABLED). */
export const rateLimits = {
  login: { rateLimit: { max: 20, timeWindow: '1 minute' } },
  register: { rateLimit: { max: 10, timeWindow: '1 minute' } },
  mailRequest: { rateLimit: { max: 5, timeWindow: '1 minute' } },
  tokenUse: { rateLimit: { max: 20, timeWindow: '1 minute' } },
  passwordChange: { rateLimit: { max: 10, timeWindow: '1 minute' } }
}

export const GENERIC_VERIFICATION_DETAIL = 'If the address belongs to an unverified account, a verification email is on its way.'
export const GENERIC_RESET_DETAIL = 'If the address belongs to an account, a password reset email is on its way.'
