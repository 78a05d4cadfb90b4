/** The four mails of the contract. Only links and fixed text go in; nothing a user typed. */
export type Mail =
  | { kind: 'verify-email', token: string }
  | { kind: 'email-verified' }
  | { kind: 'reset-password', token: string }
  | { kind: 'password-changed' }

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
  'password-changed': 'Password Changed Successfully'
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
