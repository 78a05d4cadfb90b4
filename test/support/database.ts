/**
 * The database server of this test file: MONGODB_URL when set, otherwise one throwaway FerretDB per
 * test file (over PostgreSQL: a database of its own in the cluster `npm test` shares, or a cluster
 * of its own under a bare `npx tap`), stopped when the file's tests end.
 */
import t, { type Test } from 'tap'
import { MongoClient, type Db } from 'mongodb'
import { startFerretdb, type RunningFerretdb } from '../../scripts/ferretdb.js'

let database: Promise<RunningFerretdb | null> | undefined

/** The database URL for this test file, starting FerretDB on first use. */
export async function databaseUrl (): Promise<string> {
  database ??= process.env.MONGODB_URL ? Promise.resolve(null) : startFerretdb()
  const running = await database
  return process.env.MONGODB_URL ?? running!.url
}

t.teardown(async () => {
  const running = await database
  await running?.stop()
})

/** A database of this file's server for what runs outside a test app (a service process, a bare repository); dropped when `t` ends. */
export async function ownDatabase (t: Test, name: string): Promise<Db> {
  const client = new MongoClient(await databaseUrl())
  t.teardown(async () => {
    await client.db(name).dropDatabase()
    await client.close()
  })
  return client.db(name)
}
