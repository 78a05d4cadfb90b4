/** Accounts: fresh addresses, sign-up, the login forms, and what is stored of a user. */
import type { TestApp } from './app.js'
import { db, post } from './app.js'

let counter = 0
/** A fresh address for each call, so tests never share users. */
export function uniqueEmail (label = 'user') {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${counter++}@example.com`
}

export const PASSWORD = 'correct horse battery staple'

export async function register (app: TestApp, email: string, password: string = PASSWORD) {
  return await post(app, '/auth/register', { email, password })
}

/** Registers and logs in a new user; returns its token and `authorization` header. */
export async function signUp (app: TestApp, email = uniqueEmail(), password = PASSWORD) {
  const registered = await register(app, email, password)
  if (registered.statusCode !== 200) throw new Error(`register failed: ${registered.statusCode} ${registered.body}`)
  const token = await login(app, email, password)
  return { email, password, token, user: registered.json(), headers: bearer(token) }
}

/** The OAuth2 password form, answered as is. */
export async function loginForm (app: TestApp, username: string, password: string) {
  return await app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username, password }).toString()
  })
}

/** The login form's access token; throws on anything but 200. */
export async function login (app: TestApp, email: string, password = PASSWORD): Promise<string> {
  const response = await loginForm(app, email, password)
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return response.json().access_token
}

/** The JSON login, answered as is. */
export async function loginJson (app: TestApp, email: string, password = PASSWORD, headers: Record<string, string> = {}) {
  return await post(app, '/auth/login', { username: email, password }, headers)
}

export function bearer (token: string) {
  return { authorization: `Bearer ${token}` }
}

export async function me (app: TestApp, token: string) {
  return await app.inject({ url: '/users/me', headers: bearer(token) })
}

export async function userDoc (app: TestApp, email: string) {
  return await db(app).collection('users').findOne({ email })
}

export async function isVerified (app: TestApp, email: string) {
  return (await userDoc(app, email))?.is_verified
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
