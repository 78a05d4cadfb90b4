import { ObjectId } from 'mongodb'
import t, { type Test } from 'tap'
import { build, listen, type TestApp } from '../../support/app.js'
import { messages } from '../../support/chat.js'
import { assertProblem, assertValidation } from '../../support/problems.js'
import { hasText, named, openSse, parseSse, textEvents, type Headers, type SseEvent } from '../../support/sse.js'
import { until } from '../../support/until.js'
import { signUp } from '../../support/users.js'

const WORD_DELAY_MS = '100'

interface Start { chat_id: string, message_id: string }

/** What an EventSource keeps of a stream: the text, and the id of the last event that had one. */
function received (events: SseEvent[]) {
  const texts = textEvents(events).map((e) => e.text)
  const withIds = events.filter((e) => e.event === undefined)
  return { text: texts.join(''), lastId: withIds.at(-1)?.id, ids: withIds.map((e) => e.id) }
}

/** Each text event's id is the length of the reply up to and including it, starting after `from`. */
function assertIdsAreOffsets (t: Test, events: SseEvent[], from: number) {
  let length = from
  for (const event of events.filter((e) => e.event === undefined)) {
    length += (event.data as { text: string }).text.length
    if (event.id !== String(length)) return t.fail(`event id ${event.id}, expected ${length}`)
  }
  t.pass('every text event\'s id is the reply\'s length so far')
}

async function storedReply (app: TestApp, messageId: string) {
  return await until(async () => {
    const reply = await messages(app).findOne({ _id: new ObjectId(messageId) })
    return reply && reply.status !== 'streaming' ? reply : undefined
  }, 20_000, 'the reply to end')
}

/** Starts a resumable send on `base`, reads `count` text events, and drops the connection as a phone changing networks would. */
async function sendAndDrop (base: string, headers: Headers, count: number) {
  const live = await openSse(`${base}/chat/stream`, headers, { message: 'Tell me something long', client_message_id: `send-${new ObjectId().toHexString()}` })
  const events = await live.until(hasText(count))
  live.close()
  const start = named<Start>(events, 'start')[0]!
  return { start, events, ...received(events) }
}

async function resume (base: string, headers: Headers, start: Start, lastId: string | undefined) {
  const live = await openSse(`${base}/chat/${start.chat_id}/stream?message_id=${start.message_id}`,
    { ...headers, ...(lastId !== undefined && { 'last-event-id': lastId }) }, undefined, 'GET')
  const end = await live.ended
  return { status: live.status, headers: live.headers, events: end.events, complete: end.complete }
}

t.test('an EventSource-style client that drops its connection and reconnects with Last-Event-ID to another instance gets the rest, live, with no gap and no duplicate', async (t) => {
  const a = await build(t, { ASSISTANT_WORD_DELAY_MS: WORD_DELAY_MS })
  const b = await build(t, { ASSISTANT_WORD_DELAY_MS: WORD_DELAY_MS, DATABASE_NAME: a.env.DATABASE_NAME! })
  const [baseA, baseB] = await Promise.all([listen(a), listen(b)])
  const alice = await signUp(a)

  const first = await sendAndDrop(baseA, alice.headers, 3)
  t.equal(first.ids.length, 3)
  assertIdsAreOffsets(t, first.events, 0)

  const resumed = await resume(baseB, alice.headers, first.start, first.lastId)
  t.equal(resumed.status, 200)
  t.match(resumed.headers['content-type'], /^text\/event-stream/)
  t.ok(resumed.complete, 'the server ended the stream properly')
  t.same(named(resumed.events, 'start'), [first.start], 'start names the same chat and reply')
  const rest = received(resumed.events)
  t.ok(rest.ids.length >= 2, `followed while it streamed on the other instance (${rest.ids.length} text events), not only once it ended`)
  assertIdsAreOffsets(t, resumed.events, Number(first.lastId))
  t.same(named(resumed.events, 'done'), [{ ...first.start, status: 'complete' }], 'done last, complete: the reply went on without its client')
  t.equal(resumed.events.at(-1)?.event, 'done')

  const stored = await storedReply(a, first.start.message_id)
  t.equal(first.text + rest.text, stored.content, 'what the client has is the stored reply, exactly: no gap, no duplicate')
  t.equal(stored.status, 'complete')
})

t.test('resuming on the instance that streams the reply reads it from memory, with the same guarantees', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: WORD_DELAY_MS })
  const base = await listen(app)
  const alice = await signUp(app)

  const first = await sendAndDrop(base, alice.headers, 2)
  const resumed = await resume(base, alice.headers, first.start, first.lastId)
  const rest = received(resumed.events)
  assertIdsAreOffsets(t, resumed.events, Number(first.lastId))
  const stored = await storedReply(app, first.start.message_id)
  t.equal(first.text + rest.text, stored.content, 'no gap, no duplicate')
  t.ok(rest.ids.length > 2, 'piece by piece, as the reply streams')
  t.equal(named<{ status: string }>(resumed.events, 'done')[0]?.status, 'complete')
})

t.test('a reply that has ended: the rest and done at once; all of it without Last-Event-ID; nothing more when the client has it all', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '0' })
  const alice = await signUp(app)
  const sent = await app.inject({ method: 'POST', url: '/chat/stream', headers: alice.headers, payload: { message: 'hello' } })
  const events = parseSse(sent.body)
  const start = named<Start>(events, 'start')[0]!
  const whole = received(events)
  const url = `/chat/${start.chat_id}/stream?message_id=${start.message_id}`

  const all = await app.inject({ url, headers: alice.headers })
  t.equal(all.statusCode, 200)
  t.equal(received(parseSse(all.body)).text, whole.text, 'without Last-Event-ID: the whole reply')

  const middle = textEvents(events).slice(0, 2).map((e) => e.text).join('').length
  const rest = parseSse((await app.inject({ url, headers: { ...alice.headers, 'last-event-id': String(middle) } })).body)
  t.equal(received(rest).text, whole.text.slice(middle), 'from Last-Event-ID on')
  t.same(rest.map((e) => e.event ?? 'text'), ['start', 'text', 'done'], 'in one event, then done')
  t.equal(rest[1]?.id, String(whole.text.length))

  const nothing = parseSse((await app.inject({ url, headers: { ...alice.headers, 'last-event-id': whole.lastId! } })).body)
  t.same(nothing.map((e) => e.event), ['start', 'done'], 'a client that has it all gets start and done')
  t.equal(named<{ status: string }>(nothing, 'done')[0]?.status, 'complete')
})

t.test('the same POST with its client_message_id and Last-Event-ID resumes too, storing nothing new', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: WORD_DELAY_MS })
  const base = await listen(app)
  const alice = await signUp(app)
  const live = await openSse(`${base}/chat/stream`, alice.headers, { message: 'Tell me', client_message_id: 'resume-me' })
  const firstEvents = await live.until(hasText(2))
  live.close()
  const first = received(firstEvents)
  const start = named<Start>(firstEvents, 'start')[0]!

  const again = await openSse(`${base}/chat/stream`, { ...alice.headers, 'last-event-id': first.lastId! }, { message: 'Tell me', client_message_id: 'resume-me' })
  const end = await again.ended
  t.same(named(end.events, 'start'), [start], 'the same reply')
  assertIdsAreOffsets(t, end.events, Number(first.lastId))
  const stored = await storedReply(app, start.message_id)
  t.equal(first.text + received(end.events).text, stored.content, 'no gap, no duplicate')
  t.equal(await messages(app).countDocuments({ chat_id: new ObjectId(start.chat_id) }), 2, 'one question, one reply')
})

t.test('a send without client_message_id still stops when its client drops (the original\'s behaviour); its stored part can be resumed', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: WORD_DELAY_MS })
  const base = await listen(app)
  const alice = await signUp(app)
  const live = await openSse(`${base}/chat/stream`, alice.headers, { message: 'Tell me a long story' })
  const events = await live.until(hasText(2))
  live.close()
  const start = named<Start>(events, 'start')[0]!
  const stored = await storedReply(app, start.message_id)
  t.equal(stored.status, 'interrupted')
  const rest = parseSse((await app.inject({ url: `/chat/${start.chat_id}/stream?message_id=${start.message_id}`, headers: { ...alice.headers, 'last-event-id': received(events).lastId! } })).body)
  t.equal(received(events).text + received(rest).text, stored.content, 'the rest of what was stored')
  t.equal(named<{ status: string }>(rest, 'done')[0]?.status, 'interrupted')
})

t.test('a follower ends with its session, telling why', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '300' })
  const base = await listen(app)
  const alice = await signUp(app)
  const first = await sendAndDrop(base, alice.headers, 1)
  const follower = await openSse(`${base}/chat/${first.start.chat_id}/stream?message_id=${first.start.message_id}`, alice.headers, undefined, 'GET')
  await follower.until((events) => named(events, 'start').length === 1)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: alice.headers })).statusCode, 204)
  const end = await follower.ended
  t.same(named(end.events, 'error'), [{ detail: 'Session ended' }])
  t.equal(end.events.at(-1)?.event, 'done')
})

t.test('what cannot be resumed: another user\'s reply, another chat\'s, a user message, malformed ids, a bad Last-Event-ID, no token', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '0' })
  const alice = await signUp(app)
  const mallory = await signUp(app)
  const sent = parseSse((await app.inject({ method: 'POST', url: '/chat/stream', headers: alice.headers, payload: { message: 'mine' } })).body)
  const start = named<Start>(sent, 'start')[0]!
  const other = named<Start>(parseSse((await app.inject({ method: 'POST', url: '/chat/stream', headers: alice.headers, payload: { message: 'other chat' } })).body), 'start')[0]!
  const question = await messages(app).findOne({ chat_id: new ObjectId(start.chat_id), role: 'user' })
  const url = (chat: string, message: string) => `/chat/${chat}/stream?message_id=${message}`

  for (const [what, res] of [
    ['another user\'s reply', await app.inject({ url: url(start.chat_id, start.message_id), headers: mallory.headers })],
    ['a reply of another chat', await app.inject({ url: url(other.chat_id, start.message_id), headers: alice.headers })],
    ['a user message', await app.inject({ url: url(start.chat_id, question!._id.toHexString()), headers: alice.headers })],
    ['a malformed message id', await app.inject({ url: url(start.chat_id, 'nope'), headers: alice.headers })],
    ['a malformed chat id', await app.inject({ url: url('nope', start.message_id), headers: alice.headers })]
  ] as const) {
    t.comment(what)
    assertProblem(t, res, 404, 'Message not found')
  }
  const bad = await app.inject({ url: url(start.chat_id, start.message_id), headers: { ...alice.headers, 'last-event-id': 'abc' } })
  assertValidation(t, bad, ['header', 'last-event-id'])
  assertValidation(t, await app.inject({ url: `/chat/${start.chat_id}/stream`, headers: alice.headers }), ['query', 'message_id'])
  t.equal((await app.inject({ url: url(start.chat_id, start.message_id) })).statusCode, 401)
})

t.test('a follower whose client drops gives its place back at once, while the reply streams on', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '300', MAX_LIVE_STREAMS: '2' })
  const base = await listen(app)
  const alice = await signUp(app)
  const live = await openSse(`${base}/chat/stream`, alice.headers, { message: 'Tell me', client_message_id: 'one-place' })
  const events = await live.until(hasText(1))
  live.close()
  const start = named<Start>(events, 'start')[0]!

  // The reply holds one place; a replay of the same send takes the other.
  const replay = await openSse(`${base}/chat/stream`, alice.headers, { message: 'Tell me', client_message_id: 'one-place' })
  await replay.until(hasText(1))
  const url = `/chat/${start.chat_id}/stream?message_id=${start.message_id}`
  assertProblem(t, await app.inject({ url, headers: alice.headers }), 503)
  replay.close()

  const follower = await until(async () => {
    const res = await openSse(`${base}${url}`, alice.headers, undefined, 'GET')
    if (res.status === 200) return res
    res.close()
  }, 3000, 'a place for a follower', 100)
  t.teardown(() => follower.close())
  t.equal(follower.status, 200, 'the replay\'s place is free again')
  const stored = await messages(app).findOne({ _id: new ObjectId(start.message_id) })
  t.equal(stored?.status, 'streaming', 'and the reply is still streaming')
})
