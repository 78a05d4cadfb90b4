/** The mails the app sends to the test SMTP server (./smtp.ts), and the one-time tokens of their links. */
import type { ObjectId } from 'mongodb'
import type { Test } from 'tap'
import { build, db, post, type TestApp } from './app.js'
import { startSmtp, type ReceivedMail, type TestSmtp } from './smtp.js'
import { until } from './until.js'
import { register, uniqueEmail } from './users.js'

export const SUBJECTS = {
  verify: 'Verify your email address',
  verified: 'Email verification successful',
  reset: 'Password Reset Request',
  changed: 'Password Changed Successfully'
} as const

/** An app with a real SMTP server, and no mail throttle unless `env` sets one. */
export async function appWithMail (t: Test, env: Record<string, string> = { VERIFICATION_RESEND_SECONDS: '0' }) {
  const smtp = await startSmtp(t)
  const app = await build(t, { ...smtp.env, ...env })
  return { app, smtp }
}

/** An app with a real SMTP server and a freshly registered user whose verification mail arrived. */
export async function registered (t: Test, env: Record<string, string> = {}) {
  const smtp = await startSmtp(t)
  const app = await build(t, { ...smtp.env, ...env })
  const email = uniqueEmail('verify')
  const res = await register(app, email)
  if (res.statusCode !== 200) throw new Error(`register: ${res.statusCode} ${res.body}`)
  const token = tokenOf(await mailFor(smtp, email, SUBJECTS.verify))
  return { app, smtp, email, token }
}

/** Waits (bounded) for a mail to `to` with `subject`; the `nth` such mail, counting from 1. */
export async function mailFor (smtp: TestSmtp, to: string, subject: string, nth = 1, ms = 10_000): Promise<ReceivedMail> {
  return await until(() => smtp.mails.filter((m) => m.to === to && m.subject === subject)[nth - 1], ms,
    () => `mail #${nth} "${subject}" to ${to}; got ${JSON.stringify(smtp.mails.map((m) => [m.to, m.subject]))}`, 20)
}

/**
 * Every mail the app will ever send, delivered: close() waits for the mails still being sent and
 * SMTP acknowledges a mail only after the test server stored it. Use the database before this.
 */
export async function allMailsAfterClose (app: TestApp, smtp: TestSmtp, to?: string) {
  await app.close()
  return smtp.mails.filter((m) => to === undefined || m.to === to)
}

/** The one-time token of a verification link (`...verify-email?token=`) or reset link (`.../reset-password/{token}`). */
export function tokenOf (mail: ReceivedMail): string {
  const url = new URL(mail.link!)
  const query = url.searchParams.get('token')
  if (query) return query
  return decodeURIComponent(url.pathname.split('/').pop()!)
}

/** Asks for a reset mail and returns the token of its link (the `nth` reset mail to that address). */
export async function resetToken (app: TestApp, smtp: TestSmtp, email: string, nth = 1) {
  const res = await post(app, '/auth/forgot-password', { email })
  if (res.statusCode !== 200) throw new Error(`forgot-password: ${res.statusCode} ${res.body}`)
  return tokenOf(await mailFor(smtp, email, SUBJECTS.reset, nth))
}

export async function tokenDocs (app: TestApp, userId: ObjectId, purpose: 'verify-email' | 'reset-password') {
  return await db(app).collection('one_time_tokens').find({ user_id: userId, purpose }).toArray()
}
