import { MongoNetworkError, MongoNetworkTimeoutError, MongoServerError, type Collection, type Document, type Filter, type ObjectId, type WithId } from 'mongodb'
import { withTimeout } from './with-timeout.js'

/**
 * One document by `_id`, read with the `find` command itself. The driver's findOne opens, reads and
 * closes a cursor for it, which costs the service about a fifth more CPU per lookup (a cursor and
 * its events, option merging, closing). Reads go to the primary, as a session check wants.
 *
 * The driver retries a failed findOne once; here a network or server error is tried once more
 * through findOne itself, so its retryable-read rules still apply. A timeout is not tried again:
 * one bounded wait, then the caller's 503. The retry gets what is left of that wait (the client's
 * `socketTimeoutMS`, DATABASE_TIMEOUT_MS), so a connection reset late in it cannot double it.
 */
export async function findOneById<T extends Document> (
  collection: Collection<T>, _id: unknown, projection?: Document
): Promise<WithId<T> | null> {
  const options = projection ? { projection } : {}
  const started = Date.now()
  try {
    const reply = await collection.db.command({ find: collection.collectionName, filter: { _id }, ...options, limit: 1, singleBatch: true })
    return (reply.cursor?.firstBatch?.[0] ?? null) as WithId<T> | null
  } catch (error) {
    const retryable = (error instanceof MongoNetworkError && !(error instanceof MongoNetworkTimeoutError)) || error instanceof MongoServerError
    const left = (collection.db.client.options.socketTimeoutMS || Infinity) - (Date.now() - started)
    if (!retryable || left <= 0) throw error
    return await withTimeout(collection.findOne({ _id } as Filter<T>, options), left, error)
  }
}

/**
 * Reads one document by `_id` alone and checks its owner in code.
 *
 * FerretDB 1.x on SQLite pushes only `_id` down to its storage: `{ _id, user_id }` was measured at
 * 59 against 0.95 ms of database CPU per lookup at 1,000 documents (neither uses an index there; the
 * embedded PostgreSQL backend serves both from one, see scripts/postgres-indexes.ts). On MongoDB
 * both shapes are one index lookup, so this costs nothing there.
 */
export async function findOwned<T extends { _id: ObjectId, user_id: ObjectId }> (
  collection: Collection<T>, _id: ObjectId, owner: ObjectId, projection?: Document
): Promise<WithId<T> | null> {
  // An inclusion projection must name the owner too; an exclusion one keeps it anyway.
  const inclusive = projection && Object.values(projection).some((value) => value === 1 || value === true)
  const options = projection ? { projection: inclusive ? { ...projection, user_id: 1 } : projection } : {}
  const doc = await findOneById(collection, _id, options.projection)
  return doc && doc.user_id.equals(owner) ? doc : null
}

/** Up to this many ids are read one lookup each; more are read with one `$in` query. */
const SINGLE_LOOKUPS_UP_TO = 8

/**
 * The documents with these ids. A few ids are read one by one, in parallel: FerretDB 1.x scans the
 * whole collection for `$in`. Many ids take one `$in` query, so one call never fills the pool.
 */
export async function findByIds<T extends Document, Id extends string | ObjectId> (
  collection: Collection<T>, ids: Id[], projection?: Document
): Promise<Array<WithId<T>>> {
  const options = projection ? { projection } : {}
  if (ids.length > SINGLE_LOOKUPS_UP_TO) return await collection.find({ _id: { $in: ids } } as Filter<T>, options).toArray()
  const found = await Promise.all(ids.map((_id) => findOneById(collection, _id, projection)))
  return found.filter((doc) => doc !== null)
}
