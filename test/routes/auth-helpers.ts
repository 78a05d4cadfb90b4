/** Small helpers shared by the test/routes/auth-*.test.ts files (not a test file itself). */
import type { LightMyRequestResponse } from 'fastify'
import type { ObjectId } from 'mongodb'
import { db, PASSWORD, type TestApp } from '../helper.js'
import type { ReceivedMail, TestSmtp } from '../smtp.js'

export const SUBJECTS = {
  verify: 'Verify your email address',
  verified: 'Email verification successful',
  reset: 'Password Reset Request',
  changed: 'Password Changed Successfully'
} as const

export async function post (app: TestApp, url: string, payload?: unknown, headers: Record<string, string> = {}) {
  return await app.inject({ method: 'POST', url, payload: payload as never, headers })
}

export async function register (app: TestApp, email: string, password: string = PASSWORD) {
  return await post(app, '/auth/register', { email, password })
}

/** The OAuth2 password form, answered as is (the helper's `login` throws on anything but 200). */
export async function loginForm (app: TestApp, username: string, password: string) {
  return await app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username, password }).toString()
  })
}

export async function me (app: TestApp, token: string) {
  return await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${token}` } })
}

export function bearer (token: string) {
  return { authorization: `Bearer ${token}` }
}

/** A problem+json body without its per-request id, for comparing two answers. */
export function withoutRequestId (response: LightMyRequestResponse) {
  const { request_id: requestId, ...rest } = response.json()
  return { rest, requestId }
}

/** Waits (bounded) for a mail to `to` with `subject`; the `nth` such mail, counting from 1. */
export async function mailFor (smtp: TestSmtp, to: string, subject: string, nth = 1, ms = 10_000): Promise<ReceivedMail> {
  const deadline = Date.now() + ms
  for (;;) {
    const found = smtp.mails.filter((m) => m.to === to && m.subject === subject)
    if (found.length >= nth) return found[nth - 1]!
    const left = deadline - Date.now()
    if (left <= 0) throw new Error(`no mail #${nth} "${subject}" to ${to}; got ${JSON.stringify(smtp.mails.map((m) => [m.to, m.subject]))}`)
    await smtp.waitFor(smtp.mails.length + 1, left).catch(() => {})
  }
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

export async function userDoc (app: TestApp, email: string) {
  return await db(app).collection('users').findOne({ email })
}

export async function tokenDocs (app: TestApp, userId: ObjectId, purpose: 'verify-email' | 'reset-password') {
  return await db(app).collection('one_time_tokens').find({ user_id: userId, purpose }).toArray()
}

/**
 * The algorithm and parameters of a PHC hash string. node-argon2 writes them as `m=,p=,t=`
 * (the reference CLI writes `m=,t=,p=`), so tests compare values, not the order.
 */
export function argon2Params (hash: string) {
  const [, id, version, params] = hash.split('$')
  const values = Object.fromEntries((params ?? '').split(',').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]))
  return { id, v: Number(version?.replace('v=', '')), ...values }
}
