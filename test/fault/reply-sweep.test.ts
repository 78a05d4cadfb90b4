import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ObjectId } from 'mongodb'
import { build, db, type TestApp } from '../support/app.js'
import { messages } from '../support/chat.js'
import { startDatabaseProxy } from '../support/database-proxy.js'
import { databaseUrl } from '../support/database.js'
import { parseSse, textOf } from '../support/sse.js'
import { until } from '../support/until.js'
import { signUp } from '../support/users.js'

const STALE_SECONDS = 3

t.test('checkpoints: one batched write per REPLY_CHECKPOINT_SECONDS for all streaming replies, each saving more; another instance\'s sweeps leave them alone', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '300', REPLY_CHECKPOINT_SECONDS: '1' })
  const alice = await signUp(app)
  const streamed = Promise.all([1, 2, 3].map((i) =>
    app.inject({ method: 'POST', url: '/chat/stream', headers: alice.headers, payload: { message: `slow one ${i}` } })))
  await until(async () => await messages(app).countDocuments({ role: 'assistant' }) === 3, 5000, 'three replies')
  // A second instance on the same database, sweeping at startup and every STALE_SECONDS.
  const other = await build(t, { DATABASE_NAME: app.env.DATABASE_NAME!, REPLY_STALE_SECONDS: String(STALE_SECONDS) })

  const seen = new Map<string, Map<number, string>>() // reply → updated_at → content, polled while streaming
  await until(async () => {
    const replies = await messages(app).find({ role: 'assistant' }).toArray()
    for (const r of replies) if (r.status === 'streaming' && r.content) (seen.get(r._id.toHexString()) ?? seen.set(r._id.toHexString(), new Map()).get(r._id.toHexString())!).set(r.updated_at.getTime(), r.content)
    return replies.every((r) => r.status !== 'streaming')
  }, 20_000, 'the replies to end', 50) // 40 words at 300 ms: 12 s at most
  const bodies = await streamed
  for (const res of bodies) {
    const text = textOf(parseSse(res.body))
    const stored = await messages(app).findOne({ content: text, role: 'assistant' })
    t.equal(stored?.status, 'complete', 'the reply ended complete, with every piece streamed: no sweep took it for abandoned')
  }
  t.notMatch(other.logs.text(), /stale streaming replies marked interrupted/, 'the other instance swept nothing')

  t.equal(seen.size, 3, 'every reply was checkpointed while it streamed')
  const times = [...seen.values()].map((writes) => [...writes.keys()].sort((a, b) => a - b))
  for (const writes of times) {
    const gaps = writes.slice(1).map((at, i) => at - writes[i]!)
    t.ok(writes.length >= 4, `${writes.length} checkpoints`)
    t.ok(gaps.every((gap) => gap >= 800), `never more often than the interval: ${gaps.join(', ')} ms`)
  }
  const distinct = new Set(times.flat())
  t.ok(distinct.size <= Math.max(...times.map((w) => w.length)) + 1, `the three replies were saved by the same writes (${distinct.size} distinct times)`)
  for (const writes of seen.values()) {
    const contents = [...writes.entries()].sort(([a], [b]) => a - b).map(([, c]) => c)
    t.ok(contents.every((c, i) => i === 0 || (c.startsWith(contents[i - 1]!) && c.length > contents[i - 1]!.length)), 'each checkpoint saves more of the reply')
  }
})

t.test('a checkpoint delayed past the final write (held in the network) changes nothing: the reply stays complete and whole', async (t) => {
  const proxy = await startDatabaseProxy(await databaseUrl())
  t.teardown(() => proxy.close())
  const app = await build(t, { MONGODB_URL: proxy.url, ASSISTANT_WORD_DELAY_MS: '250', REPLY_CHECKPOINT_SECONDS: '1', DATABASE_TIMEOUT_MS: '1000' })
  const alice = await signUp(app)
  const streamed = app.inject({ method: 'POST', url: '/chat/stream', headers: alice.headers, payload: { message: 'a slow one' } })
  const first = await until(() => messages(app).findOne({ role: 'assistant', pieces: { $gt: 0 } }), 10_000, 'a first checkpoint')

  // The connections open now deliver nothing until released: the next checkpoint waits in the network.
  proxy.holdOpenConnections()
  await until(async () => proxy.holds('messages'), 5000, 'a checkpoint to be held back')
  const res = await streamed
  const text = textOf(parseSse(res.body))
  const finished = await messages(app).findOne({ _id: first._id })
  t.same([finished?.status, finished?.content], ['complete', text], 'the final write landed: complete and whole')

  await proxy.release()
  await sleep(500)
  const after = await messages(app).findOne({ _id: first._id })
  t.same([after?.status, after?.content], ['complete', text], 'the late checkpoint did not set it back')
})

t.test('a reply\'s final write waits for its checkpoint in flight (FerretDB 1.x writes a matched document back whole, so one landing alongside could undo it)', async (t) => {
  const proxy = await startDatabaseProxy(await databaseUrl())
  t.teardown(() => proxy.close())
  const app = await build(t, { MONGODB_URL: proxy.url })
  const alice = await signUp(app)
  const exchange = await exchangeOf(app, alice.user.id, app.instance.id)
  const tracked = app.replyCheckpoints.track(exchange.replyId)
  tracked.update('the text so far', 3)

  proxy.holdOpenConnections()
  const flushing = app.replyCheckpoints.flush()
  await until(async () => proxy.holds('messages'), 5000, 'the checkpoint to be in flight')
  let stopped = false
  const stopping = tracked.stop().then(() => { stopped = true })
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(stopped, 'stop() (after which the final write goes) waits while the checkpoint is in flight')

  await proxy.release()
  await Promise.all([stopping, flushing])
  t.ok(stopped, 'and returns once it has landed')
  const stored = await messages(app).findOne({ _id: exchange.replyId })
  t.same([stored?.content, stored?.pieces, stored?.status], ['the text so far', 3, 'streaming'])
})

/** A user message and a streaming reply named by `instance`, stored as a send on that instance would. */
async function exchangeOf (app: TestApp, userId: string, instance: string, chatId: string | null = null) {
  const exchange = await app.exchanges.startSend({ userId, chatId, text: 'a question', title: 'q', questionId: new ObjectId(), replyId: new ObjectId(), newChatId: new ObjectId(), instance })
  return exchange!
}

const instances = (app: TestApp) => db(app).collection<{ _id: string, heartbeat_at: Date }>('instances')

t.test('the sweep ends the replies of a stopped instance only, and moves the chat\'s last message only to its newest reply', async (t) => {
  const app = await build(t, { REPLY_STALE_SECONDS: String(STALE_SECONDS) })
  const alice = await signUp(app)
  const chats = db(app).collection('chats')
  await instances(app).insertOne({ _id: 'stopped', heartbeat_at: new Date(Date.now() - 60_000) })
  const setText = async (replyId: ObjectId, content: string) => await messages(app).updateOne({ _id: replyId }, { $set: { content } })

  const abandoned = await exchangeOf(app, alice.user.id, 'stopped')
  await setText(abandoned.replyId, 'half an ans')
  const live = await exchangeOf(app, alice.user.id, app.instance.id)
  await setText(live.replyId, 'still going')
  // In a third chat, a stopped reply that is no longer the newest message: the user went on meanwhile.
  const overtaken = await exchangeOf(app, alice.user.id, 'stopped')
  await setText(overtaken.replyId, 'cut off')
  const later = await exchangeOf(app, alice.user.id, app.instance.id, overtaken.chatId.toHexString())
  await app.exchanges.finishReply(later, 'a later answer', 1, 'complete')

  await until(async () => (await messages(app).countDocuments({ status: 'interrupted' })) === 2, 3 * STALE_SECONDS * 1000, 'the sweep')
  const state = async (id: ObjectId) => {
    const doc = (await messages(app).findOne({ _id: id }))!
    return [doc.status, doc.content, doc.instance]
  }
  t.same(await state(abandoned.replyId), ['interrupted', 'half an ans', undefined], 'stopped instance: interrupted, text kept')
  t.same(await state(live.replyId), ['streaming', 'still going', app.instance.id], 'this live instance\'s reply: untouched')
  t.same(await state(overtaken.replyId), ['interrupted', 'cut off', undefined])
  const lastOf = async (chatId: ObjectId) => (await chats.findOne({ _id: chatId }))!.last_message
  t.match(await lastOf(abandoned.chatId), { _id: abandoned.replyId, status: 'interrupted', content: 'half an ans' }, 'the reply became the chat\'s last message')
  t.match(await lastOf(overtaken.chatId), { _id: later.replyId, content: 'a later answer' }, 'a newer last message stays')
  t.equal(await instances(app).countDocuments({ _id: 'stopped' }), 0, 'the stopped instance is forgotten')
  t.equal(app.logs.lines.filter((l) => l.msg === 'stale streaming replies marked interrupted').length, 1, 'one sweep logged it')
})

t.test('at startup, replies of an instance that never beat and old replies that name none end before the service is ready', async (t) => {
  const first = await build(t)
  const alice = await signUp(first)
  const ghost = await exchangeOf(first, alice.user.id, 'never-beat')
  const legacy = await exchangeOf(first, alice.user.id, 'x')
  await messages(first).updateOne({ _id: legacy.replyId }, { $unset: { instance: '' }, $set: { updated_at: new Date(Date.now() - 3600_000) } })
  const recent = await exchangeOf(first, alice.user.id, 'x')
  await messages(first).updateOne({ _id: recent.replyId }, { $unset: { instance: '' } })

  const second = await build(t, { DATABASE_NAME: first.env.DATABASE_NAME! })
  const status = async (id: ObjectId) => (await messages(second).findOne({ _id: id }))!.status
  t.equal(await status(ghost.replyId), 'interrupted', 'an instance with no heartbeat at all')
  t.equal(await status(legacy.replyId), 'interrupted', 'no instance, no write for an hour')
  t.equal(await status(recent.replyId), 'streaming', 'no instance but written just now: maybe an older version\'s live stream')
})

t.test('a stopped instance\'s reply ends within REPLY_STALE_SECONDS of its last heartbeat plus one sweep', async (t) => {
  const app = await build(t, { REPLY_STALE_SECONDS: String(STALE_SECONDS) })
  const alice = await signUp(app)
  const lastBeat = Date.now()
  await instances(app).insertOne({ _id: 'stops-now', heartbeat_at: new Date(lastBeat) })
  const exchange = await exchangeOf(app, alice.user.id, 'stops-now')
  await until(async () => (await messages(app).findOne({ _id: exchange.replyId }))!.status === 'interrupted', 4 * STALE_SECONDS * 1000, 'the sweep')
  const waited = Date.now() - lastBeat
  t.ok(waited >= STALE_SECONDS * 1000 && waited <= 2 * STALE_SECONDS * 1000 + 500, `interrupted ${waited} ms after its last heartbeat: not before the threshold, and by one interval after it`)
})
