import type { SecurityEvent } from '../../../schemas/users.js'

/**
 * The four mails of the contract, and the answer to a "this wasn't me" report. Only links and fixed
 * text go in; nothing a user typed, except the reported event's user agent (cut, stripped of control
 * characters, quoted and escaped, after the link).
 */
export type Mail =
  | { kind: 'verify-email', token: string }
  | { kind: 'email-verified' }
  | { kind: 'reset-password', token: string }
  | { kind: 'password-changed' }
  | { kind: 'not-me', token: string, event: Pick<SecurityEvent, 'kind' | 'at' | 'ip' | 'user_agent'>, sessionsEnded: number }

export interface RenderedMail {
  subject: string
  text: string
  html: string
  /** The action link, if the mail has one. */
  link?: string
}

interface TemplateSettings {
  frontendUrl: string
  verificationHours: number
  resetMinutes: number
}

export function templateSettings (config: { FRONTEND_URL: string, VERIFICATION_TOKEN_EXPIRE_HOURS: number, RESET_TOKEN_EXPIRE_MINUTES: number }): TemplateSettings {
  return { frontendUrl: config.FRONTEND_URL, verificationHours: config.VERIFICATION_TOKEN_EXPIRE_HOURS, resetMinutes: config.RESET_TOKEN_EXPIRE_MINUTES }
}

export const SUBJECTS: Record<Mail['kind'], string> = {
  'verify-email': 'Verify your email address',
  'email-verified': 'Email verification successful',
  'reset-password': 'Password Reset Request',
  'password-changed': 'Password Changed Successfully',
  'not-me': 'Your account was secured'
}

const EVENT_NAMES: Record<SecurityEvent['kind'], string> = {
  signed_in: 'a sign-in',
  sign_in_failed: 'failed sign-ins',
  locked_out: 'sign-ins refused after too many failures',
  refresh_token_reused: 'a reused session token',
  password_changed: 'a password change',
  password_reset_requested: 'a password reset request',
  password_reset_completed: 'a password reset',
  email_verified: 'an email verification',
  session_ended: 'the end of a session',
  not_me_reported: 'a report that an event was not you'
}

/** The reported event in a few plain lines (the user agent may be anything: cut and made printable). */
function describe ({ kind, at, ip, user_agent: agent }: Pick<SecurityEvent, 'kind' | 'at' | 'ip' | 'user_agent'>) {
  const lines = [`Reported: ${EVENT_NAMES[kind]}, at ${at}.`]
  if (ip) lines.push(`From the address ${ip}.`)
  if (agent) lines.push(`With the browser or app "${agent.replace(/[\p{C}]/gu, ' ').slice(0, 200)}".`)
  return lines
}

export function renderMail (mail: Mail, settings: TemplateSettings): RenderedMail {
  const base = settings.frontendUrl.replace(/\/+$/, '')
  switch (mail.kind) {
    case 'verify-email': {
      const link = `${base}/verify-email?token=${encodeURIComponent(mail.token)}`
      return withLink(SUBJECTS['verify-email'], link, [
        'Welcome! Please confirm your email address by opening the link below.',
        `The link expires in ${settings.verificationHours} hours.`,
        'If you did not create an account, you can ignore this mail.'
      ], 'Verify email')
    }
    case 'reset-password': {
      const link = `${base}/auth/reset-password/${encodeURIComponent(mail.token)}`
      return withLink(SUBJECTS['reset-password'], link, [
        'We received a request to reset your password. Open the link below to choose a new one.',
        `The link expires in ${settings.resetMinutes} minutes and works once.`,
        'If you did not ask for this, ignore this mail: your password stays unchanged.'
      ], 'Reset password')
    }
    case 'not-me': {
      const link = `${base}/auth/reset-password/${encodeURIComponent(mail.token)}`
      const ended = mail.sessionsEnded === 1 ? '1 other session was' : `${mail.sessionsEnded} other sessions were`
      return withLink(SUBJECTS['not-me'], link, [
        `You reported activity on your account that was not you. ${ended} signed out, and earlier reset links no longer work. Choose a new password now:`,
        `The link expires in ${settings.resetMinutes} minutes and works once.`,
        ...describe(mail.event),
        'If you did not make this report, someone is using one of your sessions: reset your password at once.'
      ], 'Reset password')
    }
    case 'email-verified':
      return plain(SUBJECTS['email-verified'], [
        'Your email address has been verified. Thank you!'
      ])
    case 'password-changed':
      return plain(SUBJECTS['password-changed'], [
        'The password of your account was just changed, and your other sessions were signed out.',
        'If this was not you, reset your password at once and contact support.'
      ])
  }
}

function withLink (subject: string, link: string, paragraphs: string[], action: string): RenderedMail {
  const [first, ...rest] = paragraphs
  const text = [first, '', link, '', ...rest].join('\n')
  const html = page(subject, [
    `<p>${escapeHtml(first ?? '')}</p>`,
    `<p><a href="${escapeHtml(link)}" style="display:inline-block;padding:10px 18px;background:#2563eb;color:#fff;text-decoration:none;border-radius:6px">${escapeHtml(action)}</a></p>`,
    `<p style="font-size:12px;color:#555">Or copy this link: ${escapeHtml(link)}</p>`,
    ...rest.map((p) => `<p>${escapeHtml(p)}</p>`)
  ])
  return { subject, text, html, link }
}

function plain (subject: string, paragraphs: string[]): RenderedMail {
  return { subject, text: paragraphs.join('\n\n'), html: page(subject, paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`)) }
}

function page (title: string, body: string[]) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
    '<body style="font-family:system-ui,sans-serif;line-height:1.5;max-width:560px;margin:24px auto">' +
    `<h2>${escapeHtml(title)}</h2>${body.join('')}</body></html>`
}

function escapeHtml (s: string) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
}
