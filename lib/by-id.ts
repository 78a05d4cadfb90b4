import type { Collection, Document, Filter, ObjectId, WithId } from 'mongodb'

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
  const doc = await collection.findOne({ _id } as Filter<T>, options)
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
  const found = await Promise.all(ids.map((_id) => collection.findOne({ _id } as Filter<T>, options)))
  return found.filter((doc) => doc !== null)
}
