/** Setup traffic to the service (not measured): requests, readiness, users. */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { settings } from './settings.js'

export interface BenchUser { token: string, id: string, email: string }

export async function api (port: number, method: string, path: string, options: { json?: unknown, form?: Record<string, string>, token?: string } = {}) {
  const headers: Record<string, string> = {}
  let body: string | undefined
  if (options.json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(options.json) }
  if (options.form) { headers['content-type'] = 'application/x-www-form-urlencoded'; body = new URLSearchParams(options.form).toString() }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, body, signal: AbortSignal.timeout(30_000) })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) as Record<string, unknown> : {} }
}

/** Waits (at most 30 s) until GET /health/ready answers 200: the service holds requests back with 503 until its database setup is done. */
export async function waitReady (port: number): Promise<number> {
  const deadline = Date.now() + 30_000
  let last = 0
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(2000) })
      await response.arrayBuffer()
      last = response.status
      if (response.ok) return Date.now()
    } catch {}
    await sleep(100)
  }
  throw new Error(`the service on :${port} was not ready within 30 s (last GET /health/ready: ${last})`)
}

export async function createUser (port: number, label: string): Promise<BenchUser> {
  const email = `bench-${label}-${randomBytes(4).toString('hex')}@example.com`
  const registered = await api(port, 'POST', '/auth/register', { json: { email, password: settings.password } })
  if (registered.status !== 200) throw new Error(`register ${email}: ${registered.status} ${JSON.stringify(registered.body)}`)
  const login = await api(port, 'POST', '/auth/login', { form: { username: email, password: settings.password } })
  if (login.status !== 200 || typeof login.body.access_token !== 'string') throw new Error(`login ${email}: ${login.status} ${JSON.stringify(login.body)}`)
  return { token: login.body.access_token, id: String(registered.body.id), email }
}
