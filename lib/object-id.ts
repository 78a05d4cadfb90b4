import { ObjectId } from 'mongodb'

const hex24 = /^[0-9a-f]{24}$/i

/** The ObjectId for a client-supplied id, or null when it cannot be one (answered as "not found"). */
export function parseObjectId (id: string | null | undefined): ObjectId | null {
  return typeof id === 'string' && hex24.test(id) ? new ObjectId(id) : null
}
