import { randomUUID } from 'node:crypto'
import type { Collection, ObjectId } from 'mongodb'
import { findOneById } from '../../../lib/by-id.js'
import { isDuplicateKey } from '../../../lib/database-errors.js'
import { parseObjectId } from '../../../lib/object-id.js'
import type { User } from '../../../schemas/users.js'
import { EmailTakenError } from './errors.js'
import { repositoryPlugin } from '../platform/repository-plugin.js'

export interface UserDocument {
  _id: ObjectId
  email: string
  password_hash: string
  is_verified: boolean
  created_at: Date
  updated_at: Date
  /**
   * A fresh random value with every new password (absent until the first): a login read it with the
   * hash, so a session it made after the password moved on can tell (see `holdsCredentials`).
   */
  credentials_version?: string
}

/** What the API returns about a user; the hash never leaves the repository through it. */
export function toUser (doc: Pick<UserDocument, '_id' | 'email' | 'is_verified' | 'created_at'>): User {
  return { id: doc._id.toHexString(), email: doc.email, is_verified: doc.is_verified, created_at: doc.created_at.toISOString() }
}

const publicFields = { email: 1, is_verified: 1, created_at: 1 } as const

export function createUsersRepository (users: Collection<UserDocument>) {
  return {
    async ensureIndexes () {
      await users.createIndex({ email: 1 }, { unique: true, name: 'email_unique' })
    },

    /** Emails arrive normalised; the unique index makes concurrent sign-ups of one address one account. */
    async create (email: string, passwordHash: string): Promise<User> {
      const now = new Date()
      const doc = { email, password_hash: passwordHash, is_verified: false, created_at: now, updated_at: now }
      try {
        const { insertedId } = await users.insertOne(doc as UserDocument)
        return toUser({ ...doc, _id: insertedId })
      } catch (error) {
        if (isDuplicateKey(error)) throw new EmailTakenError()
        throw error
      }
    },

    async findById (id: string): Promise<User | null> {
      const _id = parseObjectId(id)
      if (!_id) return null
      const doc = await findOneById(users, _id, publicFields)
      return doc ? toUser(doc) : null
    },

    /** For checking a password: the one read that includes the hash. */
    async findCredentials (email: string) {
      return await users.findOne({ email }, { projection: { password_hash: 1, email: 1, is_verified: 1, credentials_version: 1 } })
    },

    /**
     * Whether the user still exists with the credentials `version` read before its password was
     * checked. Random values, not a counter: FerretDB 1.x may lose one of two concurrent increments,
     * and a lost one could bring back a value a login has already read.
     */
    async holdsCredentials (id: ObjectId, version: string | undefined): Promise<boolean> {
      const doc = await findOneById(users, id, { credentials_version: 1 })
      return doc !== null && doc.credentials_version === version
    },

    async findCredentialsById (id: string) {
      const _id = parseObjectId(id)
      return _id ? await users.findOne({ _id }, { projection: { password_hash: 1, email: 1 } }) : null
    },

    async findByEmail (email: string) {
      return await users.findOne({ email }, { projection: publicFields })
    },

    async setPasswordHash (id: ObjectId, passwordHash: string) {
      await users.updateOne({ _id: id }, { $set: { password_hash: passwordHash, credentials_version: randomUUID(), updated_at: new Date() } })
    },

    /** Replaces the hash only if it is still the one that was checked (a racing change wins). */
    async upgradePasswordHash (id: ObjectId, oldHash: string, newHash: string) {
      await users.updateOne({ _id: id, password_hash: oldHash }, { $set: { password_hash: newHash } })
    },

    /** Returns the address when this call verified it, null when it already was (or the user is gone). */
    async markVerified (id: ObjectId): Promise<string | null> {
      const doc = await users.findOneAndUpdate(
        { _id: id, is_verified: false },
        { $set: { is_verified: true, updated_at: new Date() } }
      )
      return doc?.email ?? null
    },

    async delete (id: ObjectId) {
      await users.deleteOne({ _id: id })
    },

    async emailOf (id: ObjectId): Promise<string | null> {
      const doc = await users.findOne({ _id: id }, { projection: { email: 1 } })
      return doc?.email ?? null
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    usersRepository: ReturnType<typeof createUsersRepository>
  }
}

export default repositoryPlugin('usersRepository', (db) => createUsersRepository(db.collection<UserDocument>('users')))
