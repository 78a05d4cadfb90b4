/** The stream scenarios' users: real accounts and sessions, made without an argon2 hash each where possible. */
import { randomBytes } from 'node:crypto'
import { MongoClient, ObjectId } from 'mongodb'
import pLimit from 'p-limit'
import { copiedLogins } from './copied-logins.js'
import { api, createUser, type BenchUser } from './service-api.js'
import { settings } from './settings.js'

/** Copies of a signed-up user's document: a new `_id` and address, the same password hash. */
async function copyUser (mongodbUrl: string, databaseName: string, first: BenchUser, count: number) {
  const client = new MongoClient(mongodbUrl)
  const copies: Array<{ id: string, email: string }> = []
  try {
    const users = client.db(databaseName).collection('users')
    const template = await users.findOne({ _id: new ObjectId(first.id) })
    if (!template) throw new Error(`the signed-up user ${first.id} is not in the users collection`)
    for (let i = 0; i < count; i += 500) {
      const batch = Array.from({ length: Math.min(500, count - i) }, (_, j) => {
        const email = `bench-stream${i + j + 1}-${randomBytes(4).toString('hex')}@example.com`
        const doc = Object.fromEntries(Object.entries(template).map(([key, value]) => [key, value === first.email ? email : value]))
        return { email, doc: { ...doc, _id: new ObjectId() } }
      })
      await users.insertMany(batch.map((copy) => copy.doc))
      copies.push(...batch.map((copy) => ({ id: copy.doc._id.toHexString(), email: copy.email })))
    }
  } finally {
    await client.close().catch(() => {})
  }
  return copies
}

/** Logins through the API, a few at a time: the service hashes ARGON2_MAX_CONCURRENCY at once and turns a long queue away. */
async function apiLogins (port: number, users: Array<{ id: string, email: string }>): Promise<BenchUser[]> {
  const limit = pLimit(8)
  return await Promise.all(users.map(async ({ id, email }) => await limit(async () => {
    const login = await api(port, 'POST', '/auth/login', { form: { username: email, password: settings.password } })
    if (login.status !== 200 || typeof login.body.access_token !== 'string') throw new Error(`login ${email}: ${login.status} ${JSON.stringify(login.body)}`)
    return { token: login.body.access_token, id, email }
  })))
}

/**
 * `count` users with a live session each. One signs up and logs in through the API; the others are
 * copies of its user document, with copies of its session (copied-logins.ts), or logged in through
 * the API when the copies are refused.
 */
export async function createUsers (port: number, mongodbUrl: string, databaseName: string, count: number): Promise<{ users: BenchUser[], how: string }> {
  if (count <= 0) return { users: [], how: 'none' }
  const first = await createUser(port, 'stream0')
  const copies = await copyUser(mongodbUrl, databaseName, first, count - 1)
  const copied = await copiedLogins(port, mongodbUrl, databaseName, first, copies)
  return copied
    ? { users: [first, ...copied], how: 'one signed up and logged in through the API, the others copies of its user and session' }
    : { users: [first, ...await apiLogins(port, copies)], how: 'one signed up through the API, the others copies of it, each logged in through the API (copied sessions were refused)' }
}
