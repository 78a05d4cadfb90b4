/** How a failed SMTP attempt is judged: what the outbox worker does next. */

const MAX_RETRY_DELAY_SECONDS = 3600

interface SmtpError {
  code?: string
  /** nodemailer's underlying code, e.g. ECONNREFUSED under its ESOCKET. */
  originalCode?: string
  responseCode?: number
}

/** 530 authentication required, 534 mechanism too weak, 535 credentials rejected (RFC 4954). */
const LOGIN_FAILURES = new Set([530, 534, 535])

/**
 * The server refused our login: a problem of our configuration (MAIL_USERNAME, MAIL_PASSWORD), not
 * of the mail, so it is retried like an outage and goes out once the settings are fixed.
 */
export function isLoginFailure (error: unknown): boolean {
  return LOGIN_FAILURES.has((error as SmtpError).responseCode ?? 0)
}

/** Any other 5xx reply: the server refused this mail for good, so sending it again cannot help. */
export function isPermanentFailure (error: unknown): boolean {
  const code = (error as SmtpError).responseCode
  return code !== undefined && code >= 500 && code < 600 && !isLoginFailure(error)
}

/** What went wrong, short and free of addresses: an SMTP reply code or a network error code. */
export function failureCode (error: unknown): string {
  const { responseCode, originalCode, code } = error as SmtpError
  return responseCode !== undefined ? String(responseCode) : originalCode ?? code ?? 'unknown'
}

/**
 * The wait after the `attempts`-th failed attempt: the base, doubling per attempt up to an hour,
 * shortened by up to a tenth at random so mails that failed together do not retry together.
 */
export function retryDelayMs (attempts: number, baseSeconds: number): number {
  const seconds = Math.min(baseSeconds * 2 ** Math.max(attempts - 1, 0), MAX_RETRY_DELAY_SECONDS)
  return Math.round(seconds * 1000 * (1 - Math.random() * 0.1))
}
