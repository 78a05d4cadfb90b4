import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ObjectId } from 'mongodb'
import { CHECKPOINT_CHARS, CHECKPOINT_INTERVAL_MS } from '../../plugins/app/chats-repository.js'
import { build, db, signUp } from '../helper.js'

const STALE_SECONDS = 3

t.test('checkpoints: about one write a second while streaming, and another instance\'s sweeps leave the live reply alone', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '300' })
  const alice = await signUp(app)
  const messages = db(app).collection('messages')

  const streamed = app.inject({ method: 'POST', url: '/chat/stream', headers: alice.headers, payload: { message: 'a slow one' } })
  let reply = null
  while (!reply) reply = await messages.findOne({ role: 'assistant' })
  // A second instance on the same database, sweeping at startup and every STALE_SECONDS.
  const other = await build(t, { DATABASE_NAME: app.env.DATABASE_NAME!, REPLY_STALE_SECONDS: String(STALE_SECONDS) })

  const seen = new Map<number, string>() // updated_at → content, as polled while streaming
  const deadline = Date.now() + 20_000 // 40 words at 300 ms: 12 s at most
  while (reply?.status === 'streaming' && Date.now() < deadline) {
    seen.set(reply.updated_at.getTime(), reply.content)
    await sleep(50)
    reply = await messages.findOne({ _id: reply._id })
  }
  const res = await streamed
  reply = await messages.findOne({ _id: reply!._id })
  const pieces = res.body.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => JSON.parse(e.slice(6)).text as string)

  t.equal(reply?.status, 'complete', 'the reply ended complete: no sweep took it for abandoned')
  t.equal(reply?.content, pieces.join(''), 'with every piece streamed')
  t.notMatch(other.logs.text(), /stale streaming replies marked interrupted/, 'the other instance swept nothing')

  const writes = [...seen.keys()].sort((a, b) => a - b)
  const gaps = writes.slice(1).map((at, i) => at - writes[i]!)
  t.ok(writes.length >= 5, `${writes.length} checkpoints seen for ${pieces.length} pieces over ${((writes.at(-1)! - writes[0]!) / 1000).toFixed(1)} s`)
  t.ok(gaps.slice(1).every((gap) => gap >= CHECKPOINT_INTERVAL_MS * 0.8 && gap <= CHECKPOINT_INTERVAL_MS * 1.6),
    `a write about every second: ${gaps.join(', ')} ms`)
  const contents = writes.map((at) => seen.get(at)!)
  t.ok(contents.every((c, i) => i === 0 || (c.startsWith(contents[i - 1]!) && c.length > contents[i - 1]!.length)), 'each saves more of the reply')
})

t.test('checkpoints: 1 KB of new text is saved before the second is up, less waits for it', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const exchange = (await app.chatsRepository.startExchange(alice.user.id, null, 'hello', 'hello'))!
  const errors: Error[] = []
  const checkpoints = app.chatsRepository.replyCheckpoints(exchange, (error) => errors.push(error))
  t.teardown(() => checkpoints.stop())
  const stored = async () => (await db(app).collection('messages').findOne({ _id: exchange.replyId }))!.content as string

  const kilobyte = 'x'.repeat(CHECKPOINT_CHARS)
  checkpoints.update(kilobyte)
  await sleep(CHECKPOINT_INTERVAL_MS / 4)
  t.equal(await stored(), kilobyte, 'saved at once')

  checkpoints.update(`${kilobyte}and a little more`)
  await sleep(CHECKPOINT_INTERVAL_MS / 4)
  t.equal(await stored(), kilobyte, 'a small addition waits')
  await sleep(CHECKPOINT_INTERVAL_MS)
  t.equal(await stored(), `${kilobyte}and a little more`, 'and is saved within the second')

  await checkpoints.stop()
  checkpoints.update('changed after stop')
  await sleep(CHECKPOINT_INTERVAL_MS * 1.5)
  t.equal(await stored(), `${kilobyte}and a little more`, 'nothing is written after stop')
  t.same(errors, [])
})

t.test('the sweep ends stale streaming replies only, and moves the chat\'s last message only to its newest reply', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const repo = app.chatsRepository
  const messages = db(app).collection('messages')
  const chats = db(app).collection('chats')
  const age = async (replyId: ObjectId, seconds: number, content: string) =>
    await messages.updateOne({ _id: replyId }, { $set: { content, updated_at: new Date(Date.now() - seconds * 1000) } })

  const abandoned = (await repo.startExchange(alice.user.id, null, 'first question', 'one'))!
  await age(abandoned.replyId, 60, 'half an ans')
  const live = (await repo.startExchange(alice.user.id, null, 'second question', 'two'))!
  await age(live.replyId, 2, 'still going')
  // In a third chat, a stale reply that is no longer the newest message: the user went on meanwhile.
  const overtaken = (await repo.startExchange(alice.user.id, null, 'third question', 'three'))!
  await age(overtaken.replyId, 60, 'cut off')
  const later = (await repo.startExchange(alice.user.id, overtaken.chatId.toHexString(), 'hello again', null))!
  await repo.finishReply(later, 'a later answer', 'complete')

  t.equal(await repo.sweepStaleReplies(new Date(Date.now() - 30_000)), 2, 'two stale replies ended')
  t.equal(await repo.sweepStaleReplies(new Date(Date.now() - 30_000)), 0, 'a second sweep finds nothing')

  const state = async (id: ObjectId) => {
    const doc = (await messages.findOne({ _id: id }))!
    return [doc.status, doc.content]
  }
  t.same(await state(abandoned.replyId), ['interrupted', 'half an ans'], 'stale: interrupted, text kept')
  t.same(await state(live.replyId), ['streaming', 'still going'], 'fresh: untouched')
  t.same(await state(overtaken.replyId), ['interrupted', 'cut off'])

  const lastOf = async (chatId: ObjectId) => (await chats.findOne({ _id: chatId }))!.last_message
  t.match(await lastOf(abandoned.chatId), { _id: abandoned.replyId, status: 'interrupted', content: 'half an ans' }, 'the reply became the chat\'s last message')
  t.match(await lastOf(overtaken.chatId), { _id: later.replyId, content: 'a later answer' }, 'a newer last message stays')

  // A stream swept while its process could not reach the database checkpoints itself back to life.
  await age(live.replyId, 60, 'still going')
  await repo.sweepStaleReplies(new Date(Date.now() - 30_000))
  const checkpoints = repo.replyCheckpoints(live, (error) => t.fail(error.message))
  checkpoints.update('x'.repeat(CHECKPOINT_CHARS))
  await checkpoints.stop()
  t.same(await state(live.replyId), ['streaming', 'x'.repeat(CHECKPOINT_CHARS)], 'streaming again after its next checkpoint')
})

t.test('startup and periodic sweeps: stale replies end within the threshold plus one interval', async (t) => {
  const app = await build(t, { REPLY_STALE_SECONDS: String(STALE_SECONDS) })
  const alice = await signUp(app)
  const exchange = (await app.chatsRepository.startExchange(alice.user.id, null, 'left behind', null))!
  const started = Date.now()
  let status = 'streaming'
  while (status === 'streaming' && Date.now() - started < 4 * STALE_SECONDS * 1000) {
    await sleep(100)
    status = (await db(app).collection('messages').findOne({ _id: exchange.replyId }))!.status
  }
  const waited = Date.now() - started
  t.equal(status, 'interrupted', `interrupted ${waited} ms after its last write`)
  t.ok(waited >= STALE_SECONDS * 1000 && waited <= 2 * STALE_SECONDS * 1000 + 500, 'not before the threshold, and by one interval after it')
  // The sweep logs once its update returns, a moment after the new status is visible.
  const sweepLines = () => app.logs.lines.filter((l) => l.msg === 'stale streaming replies marked interrupted').length
  for (let i = 0; i < 40 && sweepLines() === 0; i++) await sleep(50)
  t.equal(sweepLines(), 1, 'one sweep logged it')
})
