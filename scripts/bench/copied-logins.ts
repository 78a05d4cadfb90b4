/**
 * Logins for many bench users without an argon2 hash each (30 ms of CPU; 1,334 logins take a
 * minute or more of a 2-core machine's 5-minute budget): one real login's session document is
 * copied for each user, with a new `_id`, the user's id, and fresh values where an index is unique,
 * and its access token is signed again with the user's and the copy's ids (HS256, SECRET_KEY).
 * A few are tried on GET /users/me; when refused (the session or token format changed), the caller
 * logs in through the API instead.
 */
import { createHmac, randomBytes } from 'node:crypto'
import { MongoClient, ObjectId, type Document } from 'mongodb'
import { api, type BenchUser } from './service-api.js'
import { settings } from './settings.js'

const fresh = (value: unknown) => value instanceof ObjectId
  ? new ObjectId()
  : typeof value === 'string' ? randomBytes(Math.ceil(value.length / 2)).toString('hex').slice(0, value.length) : undefined

export async function copiedLogins (port: number, mongodbUrl: string, databaseName: string, template: BenchUser, users: Array<{ id: string, email: string }>): Promise<BenchUser[] | null> {
  const [header, body] = template.token.split('.')
  const claims = JSON.parse(Buffer.from(body ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
  const [sessionKey, sessionId] = Object.entries(claims).find(([, value]) => typeof value === 'string' && /^[0-9a-f]{24}$/.test(value) && value !== template.id) ?? []
  if (!header || !sessionKey) return null
  const client = new MongoClient(mongodbUrl)
  try {
    const sessions = client.db(databaseName).collection('sessions')
    const session = await sessions.findOne({ _id: new ObjectId(sessionId as string) })
    if (!session) return null
    const unique = new Set((await sessions.listIndexes().toArray()).filter((index) => index.unique).flatMap((index) => Object.keys(index.key as Document)))
    if ([...unique].some((key) => key in session && fresh(session[key]) === undefined)) return null
    const templateUser = new ObjectId(template.id)
    const logins: BenchUser[] = []
    for (let i = 0; i < users.length; i += 500) {
      const batch = users.slice(i, i + 500).map((user) => {
        const copy: Document = { _id: new ObjectId() }
        for (const [key, value] of Object.entries(session)) {
          if (key === '_id') continue
          copy[key] = unique.has(key) ? fresh(value) : value instanceof ObjectId && value.equals(templateUser) ? new ObjectId(user.id) : value
        }
        const payload = Object.fromEntries(Object.entries(claims).map(([key, value]) =>
          [key, key === sessionKey ? copy._id.toHexString() : value === template.id ? user.id : value]))
        const signed = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
        const token = `${signed}.${createHmac('sha256', settings.secret).update(signed).digest('base64url')}`
        return { copy, login: { ...user, token } }
      })
      await sessions.insertMany(batch.map((b) => b.copy))
      logins.push(...batch.map((b) => b.login))
    }
    for (const login of [logins[0], logins[Math.floor(logins.length / 2)], logins.at(-1)]) {
      if (!login) continue
      const me = await api(port, 'GET', '/users/me', { token: login.token })
      if (me.status !== 200 || me.body.id !== login.id) return null
    }
    return logins
  } finally {
    await client.close().catch(() => {})
  }
}
