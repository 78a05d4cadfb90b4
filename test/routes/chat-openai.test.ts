import t from 'tap'
import { ObjectId } from 'mongodb'
import { build, db, listen, type TestApp } from '../support/app.js'
import { settledReply, stream } from '../support/chat.js'
import { openAiApp, USAGE, type UpstreamRequest } from '../support/openai.js'
import { openSse, parseSse, textOf } from '../support/sse.js'
import { until } from '../support/until.js'
import { signUp } from '../support/users.js'

/** Events with their data as objects, as these tests read them. */
type Event = { event?: string, data: Record<string, unknown> }
const parseEvents = (body: string) => parseSse(body) as Event[]

async function storedReply (app: TestApp, id: unknown) {
  return await db(app).collection('messages').findOne({ _id: new ObjectId(String(id)) })
}

t.test('openai provider: streams the deltas, sends the context and stores text and usage', async (t) => {
  const { upstream, app } = await openAiApp(t)
  const alice = await signUp(app)
  const chat = (await app.inject({
    method: 'POST',
    url: '/chat/',
    headers: alice.headers,
    payload: { system_prompt: 'Answer in French.', messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Salut' }] }
  })).json()

  const res = await stream(app, alice.headers, { message: 'How are you?', chat_id: chat.id })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  const events = parseEvents(res.body)
  t.equal(events[0]?.event, 'start', 'start comes first')
  t.equal(textOf(events), 'Hello there!', 'the deltas, in order')
  t.same(events.filter((e) => e.event === undefined).map((e) => e.data), [
    { text: 'Hello', chat_id: chat.id }, { text: ' there', chat_id: chat.id }, { text: '!', chat_id: chat.id }
  ], 'one event per delta, as the original shaped them')
  const done = events.at(-1)!
  t.equal(done.event, 'done', 'done comes last')
  t.same(done.data, { chat_id: chat.id, message_id: events[0]!.data.message_id, status: 'complete' })

  const call = upstream.requests[0]!
  t.equal(call.headers.authorization, 'Bearer sk-test-secret-key', 'the API key as a bearer token')
  t.same(call.body.messages, [
    { role: 'system', content: 'Answer in French.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Salut' },
    { role: 'user', content: 'How are you?' }
  ], 'system prompt, then the conversation, then the new message')
  t.equal(call.body.model, 'gpt-test', 'the default model')
  t.equal(call.body.stream, true)
  t.same(call.body.stream_options, { include_usage: true }, 'usage asked for')

  const stored = await storedReply(app, done.data.message_id)
  t.equal(stored?.content, 'Hello there!')
  t.equal(stored?.status, 'complete')
  t.same(stored?.usage, USAGE, 'usage stored')
  const got = (await app.inject({ url: `/chat/${chat.id}`, headers: alice.headers })).json()
  t.same(got.messages.at(-1).usage, USAGE, 'and shown on the message')
  t.notOk(app.logs.text().includes('sk-test-secret-key'), 'the key is in no log line')
})

t.test('openai provider: the chat\'s model, and no Authorization without a key', async (t) => {
  const { upstream, app } = await openAiApp(t, { ASSISTANT_API_KEY: '' })
  const alice = await signUp(app)
  const chat = (await app.inject({ method: 'POST', url: '/chat/', headers: alice.headers, payload: { model: 'llama3.2' } })).json()
  t.equal((await stream(app, alice.headers, { message: 'Hi', chat_id: chat.id })).statusCode, 200)
  t.equal(upstream.requests[0]!.body.model, 'llama3.2')
  t.equal(upstream.requests[0]!.headers.authorization, undefined)

  const put = await app.inject({ method: 'PUT', url: `/chat/${chat.id}`, headers: alice.headers, payload: { model: null } })
  t.equal(put.json().model, null)
  t.equal((await stream(app, alice.headers, { message: 'Again', chat_id: chat.id })).statusCode, 200)
  t.equal(upstream.requests[1]!.body.model, 'gpt-test', 'cleared: the default again')
})

t.test('openai provider: context is trimmed from the oldest to ASSISTANT_CONTEXT_CHARS', async (t) => {
  const { upstream, app } = await openAiApp(t, { ASSISTANT_CONTEXT_CHARS: '100' })
  const alice = await signUp(app)
  const messages = ['a', 'b', 'c', 'd', 'e', 'f'].map((c, i) => ({ role: i % 2 ? 'assistant' : 'user', content: c.repeat(20) }))
  const chat = (await app.inject({ method: 'POST', url: '/chat/', headers: alice.headers, payload: { system_prompt: 'S'.repeat(30), messages } })).json()
  t.equal((await stream(app, alice.headers, { message: 'N'.repeat(20), chat_id: chat.id })).statusCode, 200)
  // 100 - 30 (system) - 20 (new) leaves 50: the two newest earlier messages.
  t.same(upstream.requests[0]!.body.messages.map((m) => m.content), ['S'.repeat(30), 'e'.repeat(20), 'f'.repeat(20), 'N'.repeat(20)])

  const long = 'L'.repeat(500)
  t.equal((await stream(app, alice.headers, { message: long, chat_id: chat.id })).statusCode, 200)
  t.same(upstream.requests[1]!.body.messages.map((m) => m.content), ['S'.repeat(30), long], 'the system prompt and the new message always go')
})

t.test('openai provider: an upstream 500 is a 502 before the stream, and the reply is stored as error', async (t) => {
  const { upstream, app } = await openAiApp(t)
  const alice = await signUp(app)
  upstream.respond(() => ({ status: 500 }))
  const res = await stream(app, alice.headers, { message: 'Anyone there?' })
  t.equal(res.statusCode, 502)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.json().detail, 'The assistant answered HTTP 500')
  const stored = await db(app).collection('messages').find({ user_id: new ObjectId(alice.user.id) }).sort({ seq: 1 }).toArray()
  t.same(stored.map((m) => [m.role, m.content, m.status]), [['user', 'Anyone there?', undefined], ['assistant', '', 'error']],
    'the message is kept, the reply marked error')
})

t.test('openai provider: unreachable or silent upstreams are 502s within the time limit', async (t) => {
  const { upstream, app } = await openAiApp(t, { ASSISTANT_TIMEOUT_SECONDS: '1' })
  const alice = await signUp(app)
  upstream.respond(() => ({ headersDelayMs: 3000, pieces: ['late'] }))
  const started = Date.now()
  const slow = await stream(app, alice.headers, { message: 'Hello?' })
  t.equal(slow.statusCode, 502)
  t.equal(slow.json().detail, 'The assistant did not answer within 1 s')
  t.ok(Date.now() - started < 2500, 'answered at the time limit, not when the upstream woke up')

  const closed = await build(t, { ASSISTANT_PROVIDER: 'openai', ASSISTANT_BASE_URL: 'http://127.0.0.1:9/v1', ASSISTANT_MODEL: 'm' })
  const bob = await signUp(closed)
  const refused = await stream(closed, bob.headers, { message: 'Hello?' })
  t.equal(refused.statusCode, 502)
  t.equal(refused.json().detail, 'The assistant could not be reached')
})

t.test('openai provider: a connection dropped mid-stream ends with error, and the partial text is stored', async (t) => {
  const { upstream, app } = await openAiApp(t)
  const alice = await signUp(app)
  upstream.respond(() => ({ pieces: ['One', ' two', ' three', ' four'], pieceDelayMs: 50, dropAfter: 2 }))
  const res = await stream(app, alice.headers, { message: 'Count' })
  t.equal(res.statusCode, 200)
  const events = parseEvents(res.body)
  t.equal(textOf(events), 'One two')
  t.same(events.slice(-2).map((e) => e.event), ['error', 'done'])
  t.same(events.at(-2)!.data, { detail: 'The assistant connection was lost mid-reply' })
  t.equal(events.at(-1)!.data.status, 'error')
  const stored = await storedReply(app, events.at(-1)!.data.message_id)
  t.equal(stored?.content, 'One two', 'what was streamed is kept')
  t.equal(stored?.status, 'error')
})

t.test('openai provider: a slow upstream gets pings, and a server without usage is fine', async (t) => {
  const { upstream, app } = await openAiApp(t, { STREAM_PING_SECONDS: '1' })
  const alice = await signUp(app)
  upstream.respond(() => ({ pieces: ['slow', ' answer'], pieceDelayMs: 2200, withoutUsage: true }))
  const res = await stream(app, alice.headers, { message: 'Take your time' })
  t.equal(res.statusCode, 200)
  t.match(res.body, /\n: ping\n\n/, 'a ping comment while waiting')
  const events = parseEvents(res.body)
  t.equal(textOf(events), 'slow answer')
  const stored = await storedReply(app, events.at(-1)!.data.message_id)
  t.equal(stored?.status, 'complete')
  t.notOk('usage' in (stored ?? {}), 'no usage reported, none stored')
})

t.test('openai provider: a client disconnect and a stop abort the upstream request within 2 s', async (t) => {
  const { upstream, app } = await openAiApp(t)
  const base = await listen(app)
  const alice = await signUp(app)
  const longReply = () => ({ pieces: Array.from({ length: 100 }, (_, i) => ` w${i}`), pieceDelayMs: 200 })
  upstream.respond(longReply)

  await t.test('disconnect', async (t) => {
    const live = await openSse(`${base}/chat/stream`, alice.headers, { message: 'Long one' })
    const events = await live.until((received) => textOf(received).length > 0) as Event[]
    const call = upstream.requests.at(-1)!
    live.close()
    const leftAt = Date.now()
    const aborted = await until(() => call.abortedAt, 5000, 'the upstream request to be aborted', 50)
    t.ok(aborted !== undefined && aborted - leftAt < 2000, `upstream aborted ${aborted! - leftAt} ms after the disconnect`)
    t.notOk(call.finished)
    const messageId = events[0]!.data.message_id
    const stored = await settledReply(app, String(messageId))
    t.equal(stored?.status, 'interrupted')
    t.ok(String(stored?.content).startsWith(textOf(events)), 'the stored text holds what the client got')
  })

  await t.test('stop', async (t) => {
    const live = await openSse(`${base}/chat/stream`, alice.headers, { message: 'Another long one' })
    const events = await live.until((received) => textOf(received).length > 0) as Event[]
    const call = upstream.requests.at(-1)!
    const chatId = String(events[0]!.data.chat_id)
    const stoppedAt = Date.now()
    const stop = await app.inject({ method: 'POST', url: `/chat/${chatId}/stop`, headers: alice.headers })
    t.equal(stop.statusCode, 202)
    const aborted = await until(() => call.abortedAt, 5000, 'the upstream request to be aborted', 50)
    t.ok(aborted !== undefined && aborted - stoppedAt < 2000, `upstream aborted ${aborted! - stoppedAt} ms after the stop`)
    const all = parseEvents((await live.ended).body)
    t.same(all.at(-1), { event: 'done', data: { chat_id: chatId, message_id: events[0]!.data.message_id, status: 'interrupted' } })
    t.notOk(all.some((e) => e.event === 'error'), 'a stop is no error')
    const stored = await storedReply(app, events[0]!.data.message_id)
    t.equal(stored?.status, 'interrupted')
    t.equal(stored?.content, textOf(all), 'stored text is what was streamed')
  })
})

t.test('openai provider: a retried client_message_id replays without calling the provider', async (t) => {
  const { upstream, app } = await openAiApp(t)
  const alice = await signUp(app)
  const first = parseEvents((await stream(app, alice.headers, { message: 'Once', client_message_id: 'msg-1' })).body)
  const again = parseEvents((await stream(app, alice.headers, { message: 'Once', client_message_id: 'msg-1' })).body)
  t.equal(upstream.requests.length, 1, 'the provider was called once')
  t.equal(textOf(again), textOf(first))
  t.same(again.at(-1), first.at(-1), 'the same chat, message and status')
  t.equal(await db(app).collection('messages').countDocuments({ user_id: new ObjectId(alice.user.id) }), 2, 'one message, one reply')
  const requests: UpstreamRequest[] = upstream.requests
  t.equal(requests[0]!.body.messages.at(-1)?.content, 'Once')
})
