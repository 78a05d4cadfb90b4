import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { ObjectId } from 'mongodb'
import { createMailOutboxRepository } from '../../plugins/app/mail/outbox-repository.js'
import { ownDatabase } from '../support/database.js'
import { outbox } from '../support/outbox.js'

const HOUR = 3_600_000

t.test('the repository: oldest due first, a lease keeps an entry from others, one winner per attempt', async (t) => {
  const database = await ownDatabase(t, `test_outbox_repo_${randomBytes(4).toString('hex')}`)
  const repository = createMailOutboxRepository(outbox(database), database.collection('mail_outbox_claims'))
  await repository.ensureIndexes()
  const mail = (to: string) => ({ to, kind: 'password-changed' as const, subject: 's', text: 't', html: 'h', expires_at: null })

  const ids: ObjectId[] = []
  for (const to of ['b', 'c', 'a']) ids.push(await repository.add(mail(to)))
  const due = { b: -2000, c: -1000, a: -3000 }
  for (const [i, to] of ['b', 'c', 'a'].entries()) {
    await outbox(database).updateOne({ _id: ids[i] }, { $set: { next_attempt_at: new Date(Date.now() + due[to as keyof typeof due]) } })
  }
  await repository.add(mail('later')).then((id) => outbox(database).updateOne({ _id: id }, { $set: { next_attempt_at: new Date(Date.now() + HOUR) } }))

  const claimed = [await repository.claim('one', 300), await repository.claim('one', 300), await repository.claim('one', 300)]
  t.strictSame(claimed.map((e) => e?.to), ['a', 'b', 'c'], 'the entry due longest ago first')
  t.match(claimed[0], { status: 'sending', attempts: 1, lease_owner: 'one' })
  t.equal(await repository.claim('two', 300), null, 'leased and not-yet-due entries are not handed out')

  await sleep(400)
  const retaken = await repository.claim('two', 300)
  t.equal(retaken?.to, 'a', 'an expired lease is taken over')
  t.equal(retaken?.attempts, 2, 'as a new attempt')
  await repository.finish(claimed[0]!, 'sent')
  t.equal((await outbox(database).findOne({ _id: ids[2] }))?.status, 'sending', 'the attempt that lost its lease records nothing')
  await repository.finish(retaken!, 'sent')
  t.equal((await outbox(database).findOne({ _id: ids[2] }))?.status, 'sent', 'the current attempt does')

  await outbox(database).deleteMany({})
  for (let i = 0; i < 30; i++) await repository.add(mail(`race${i}`))
  const won: string[] = []
  await Promise.all(Array.from({ length: 8 }, async (_, worker) => {
    for (let entry = await repository.claim(`w${worker}`, 60_000); entry; entry = await repository.claim(`w${worker}`, 60_000)) {
      won.push(entry.to)
    }
  }))
  t.equal(won.length, 30, '8 concurrent claimers: 30 claims for 30 entries')
  t.equal(new Set(won).size, 30, 'none taken twice')
})
