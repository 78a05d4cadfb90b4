import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ownDatabase } from '../support/database.js'
import { call, signUpOver, startService, whenReady } from '../support/service.js'
import { hasText, openSse, textOf } from '../support/sse.js'

const WORD_DELAY_MS = 250
const STALE_SECONDS = 3
const CHECKPOINT_SECONDS = 1

t.test('kill -9 mid-stream, then a new process: its startup sweep ends the reply with the last checkpoint\'s text, and the dead stream\'s slot is taken over', async (t) => {
  const database = `test_crash_${process.pid}`
  const stored = await ownDatabase(t, database)
  const messages = stored.collection('messages')
  const env = { DATABASE_NAME: database, ASSISTANT_WORD_DELAY_MS: String(WORD_DELAY_MS), REPLY_STALE_SECONDS: String(STALE_SECONDS), REPLY_CHECKPOINT_SECONDS: String(CHECKPOINT_SECONDS), MAX_STREAMS_PER_USER: '1' }

  const first = await startService(t, env)
  await whenReady(first.port)
  const auth = await signUpOver(first.port)
  const message = 'Tell me a long story'
  const stream = await openSse(`http://127.0.0.1:${first.port}/chat/stream`, auth, { message })
  await stream.until(hasText(10), 30_000) // 2.5 s in: two checkpoints or more; every demo reply has at least 20 words

  // Freeze the process so no checkpoint leaves it after this read, let one already sent land, then kill.
  first.child.kill('SIGSTOP')
  await sleep(500)
  const checkpoint = await messages.findOne({ role: 'assistant' })
  const lastBeat = (await stored.collection<{ _id: string, heartbeat_at: Date }>('instances').findOne({}))!.heartbeat_at
  first.child.kill('SIGKILL')
  t.equal(await first.exited, null, 'the first process was killed')
  t.notOk((await stream.ended).complete, 'the client saw the connection break')

  t.equal(checkpoint?.status, 'streaming', 'the reply was streaming when the process died')
  const saved = checkpoint!.content as string
  const received = textOf(stream.events())
  t.ok(saved.length > 0, `the last checkpoint saved ${saved.split(' ').length - 1} words`)
  t.ok(received.startsWith(saved), 'it saved a prefix of what the client received')
  const lostWords = received.slice(saved.length).split(' ').length - 1
  t.ok(lostWords <= Math.ceil(CHECKPOINT_SECONDS * 1000 / WORD_DELAY_MS) + 1, `${lostWords} words sent after it: at most one checkpoint interval's worth`)

  // An instance whose heartbeat is younger than the stale threshold may still be alive: wait it out.
  await sleep(Math.max(0, lastBeat.getTime() + STALE_SECONDS * 1000 + 200 - Date.now()))
  const second = await startService(t, env)
  await whenReady(second.port)

  t.equal(await messages.countDocuments({ status: 'streaming' }), 0, 'nothing left streaming once the new process is ready')
  const reply = await messages.findOne({ _id: checkpoint!._id })
  t.equal(reply?.status, 'interrupted')
  t.equal(reply?.content, saved, 'the stored text is what the last checkpoint saved')
  t.match(second.output(), /"swept":1,.*"msg":"stale streaming replies marked interrupted"/, 'the sweep logged what it did')

  const chatId = (checkpoint!.chat_id as { toHexString (): string }).toHexString()
  const chat = await call(second.port, 'GET', `/chat/${chatId}`, undefined, auth)
  t.equal(chat.status, 200)
  t.same(chat.json().messages.map((m: { role: string, content: string, status?: string }) => [m.role, m.content, m.status]),
    [['user', message, undefined], ['assistant', saved, 'interrupted']], 'the user message and the partial reply')
  const list = await call(second.port, 'GET', '/chat/', undefined, auth)
  t.match(list.json()[0].last_message, { id: checkpoint!._id.toHexString(), status: 'interrupted', content: saved }, 'the chat list shows the reply as last message')

  // The only slot of the user still names the dead stream's reply (its claim outlives the process).
  t.equal(await stored.collection<{ _id: string }>('claims').countDocuments({ _id: { $regex: '^stream-slot:' } }), 1, 'the dead stream\'s slot is still held')
  const again = await openSse(`http://127.0.0.1:${second.port}/chat/stream`, auth, { message: 'and another one' })
  t.ok((await again.ended).complete, 'the user streams again: the abandoned slot was taken over')
  t.equal((again.events().at(-1)?.data as { status?: string } | undefined)?.status, 'complete')

  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0, 'the second process stops cleanly')
})
