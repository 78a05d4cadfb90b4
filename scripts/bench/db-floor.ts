/**
 * The database floor: the cheapest query the service makes, `findOne({ _id })`, one at a time from
 * this process, at 10 and at 10,000 documents, in a scratch database dropped afterwards. Every
 * request costs at least this per query; a lookup that grows with the documents uses no index.
 */
import { randomBytes } from 'node:crypto'
import { MongoClient, ObjectId } from 'mongodb'
import type { BenchContext, Phase } from './context.js'
import { fmt, median } from './stats.js'

const LOOKUPS = 300

interface Floor { documents: number, medianMs: number, dbCpuMs: number }

export async function databaseFloor (ctx: BenchContext): Promise<Phase> {
  const client = new MongoClient(ctx.mongodbUrl)
  const db = client.db(`bench_floor_${randomBytes(4).toString('hex')}`)
  const collection = db.collection<{ _id: ObjectId, n: number, text: string }>('floor')
  const ids: ObjectId[] = []
  const fill = async (upTo: number) => {
    while (ids.length < upTo) {
      const batch = Array.from({ length: Math.min(1000, upTo - ids.length) }, (_, i) => ({ _id: new ObjectId(), n: ids.length + i, text: 'x'.repeat(200) }))
      await collection.insertMany(batch)
      ids.push(...batch.map((doc) => doc._id))
    }
  }
  const measure = async (): Promise<Floor> => {
    const pick = () => ids[Math.floor(Math.random() * ids.length)]!
    for (let i = 0; i < 20; i++) await collection.findOne({ _id: pick() })
    const times: number[] = []
    const cpuBefore = ctx.db.cpuMs()
    for (let i = 0; i < LOOKUPS; i++) {
      const id = pick()
      const start = performance.now()
      const found = await collection.findOne({ _id: id })
      times.push(performance.now() - start)
      if (!found) throw new Error(`database floor: ${id.toHexString()} was not found`)
    }
    return { documents: ids.length, medianMs: median(times), dbCpuMs: (ctx.db.cpuMs() - cpuBefore) / LOOKUPS }
  }
  try {
    await fill(10)
    const small = await measure()
    await fill(10_000)
    const large = await measure()
    const cpu = (floor: Floor) => ctx.db.measured ? `, database CPU ${fmt(floor.dbCpuMs, 2)} ms` : ''
    return {
      lines: [`database floor, findOne({ _id }) one at a time, median of ${LOOKUPS}: ` +
        `${fmt(small.documents)} documents ${fmt(small.medianMs, 2)} ms${cpu(small)}; ` +
        `${fmt(large.documents)} documents ${fmt(large.medianMs, 2)} ms${cpu(large)} (per lookup)`],
      problems: []
    }
  } finally {
    await db.dropDatabase().catch(() => {})
    await client.close().catch(() => {})
  }
}
