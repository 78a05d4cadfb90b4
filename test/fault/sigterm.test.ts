import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ownDatabase } from '../support/database.js'
import { call, signUpOver, startService, whenReady, type Answer } from '../support/service.js'
import { hasText, openSse, textOf } from '../support/sse.js'
import { until } from '../support/until.js'
import { PASSWORD } from '../support/users.js'

const STREAMS = 5
const REQUESTS = 20
const GRACE_MS = 10_000

t.test('SIGTERM with streams and requests in flight: requests finish 2xx, streams end and are stored interrupted, exit 0', async (t) => {
  const database = `test_sigterm_${process.pid}`
  const stored = await ownDatabase(t, database)
  const service = await startService(t, { DATABASE_NAME: database, ASSISTANT_WORD_DELAY_MS: '200', MAX_STREAMS_PER_USER: String(STREAMS) })
  await whenReady(service.port)
  const auth = await signUpOver(service.port)
  const port = service.port

  const streams = await Promise.all(Array.from({ length: STREAMS }, () => openSse(`http://127.0.0.1:${port}/chat/stream`, auth, { message: 'tell me something long' })))
  await Promise.all(streams.map((s) => s.until(hasText(2))))

  // Sign-ups queue behind the password hasher, so most are still running when the signal comes.
  const received = service.logged('incoming request')
  let signalledAt = Infinity
  const finishedAfterSignal: number[] = []
  const requests = Array.from({ length: REQUESTS }, async (_, i) => {
    const answer: Answer = i % 2 === 0
      ? await call(port, 'POST', '/auth/register', { email: `sigterm-${process.pid}-${i}@example.com`, password: PASSWORD })
      : await call(port, 'POST', '/chat/', { title: `sigterm ${i}` }, auth)
    if (Date.now() > signalledAt) finishedAfterSignal.push(i)
    return answer
  })
  // In flight: the server has taken every one of them (it logs each request it takes).
  await until(() => service.logged('incoming request') >= received + REQUESTS, 10_000, 'the server to take every request', 5)
  signalledAt = Date.now()
  service.child.kill('SIGTERM')
  await sleep(100)
  const late = await call(port, 'GET', '/health/ready').then((a) => a.status, (error: NodeJS.ErrnoException) => error.code)

  const code = await Promise.race([service.exited, sleep(GRACE_MS + 2000).then(() => 'still running')])
  const exitMs = Date.now() - signalledAt
  t.equal(code, 0, `exit code 0, ${exitMs} ms after SIGTERM`)
  t.ok(exitMs < GRACE_MS, 'within the 10 s grace')

  const answers = await Promise.all(requests)
  t.same(answers.map((a) => a.status), answers.map(() => 200), 'every request in flight finished 2xx')
  t.ok(finishedAfterSignal.length >= 3, `${finishedAfterSignal.length} of them finished after the signal`)
  // 503 while draining; refused once the listener is closed, or reset when it closes with the
  // connection still in its accept queue.
  t.ok(late === 503 || late === 'ECONNREFUSED' || late === 'ECONNRESET', `a request after the signal is turned away (${late})`)
  t.same(await Promise.all(streams.map(async (s) => (await s.ended).complete)), streams.map(() => true), 'the server ended every stream')

  const messages = stored.collection('messages')
  const replies = await messages.find({ role: 'assistant' }).toArray()
  t.same(replies.map((r) => r.status), streams.map(() => 'interrupted'), `${STREAMS} replies stored interrupted`)
  for (const [i, stream] of streams.entries()) {
    const chatId = (stream.events()[0]!.data as { chat_id: string }).chat_id
    const reply = replies.find((r) => r.chat_id.toHexString() === chatId)
    t.equal(reply?.content, textOf(stream.events()), `stream ${i + 1}: the stored text is exactly what the client received`)
  }
  t.equal(await messages.countDocuments({ status: 'streaming' }), 0, 'nothing left streaming')

  const emails = answers.flatMap((a, i) => i % 2 === 0 ? [`sigterm-${process.pid}-${i}@example.com`] : [])
  t.equal(await stored.collection('users').countDocuments({ email: { $in: emails } }), emails.length, 'every account stored')
  const chatIds = answers.flatMap((a, i) => i % 2 === 1 ? [a.json().id as string] : [])
  t.equal(new Set(chatIds).size, REQUESTS / 2, 'every chat created')
})
