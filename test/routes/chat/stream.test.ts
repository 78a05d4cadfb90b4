/**
 * POST /chat/stream, POST /chat/{id}/stop and POST /chat/{id}/regenerate: the original's stream,
 * the events around it, idempotent sends, stream limits, the time limit, stop and regenerate, with
 * the built-in demo assistant and its directives, then with the openai provider against the local
 * stand-in of the OpenAI protocol.
 */
import t from 'tap'
import type { Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { ObjectId } from 'mongodb'
import { build, db, listen, type TestApp } from '../../support/app.js'
import { chats, createChat, getChat, hex24, messages, settledReply, storedChats, storedMessages, stream, unreachableChats, type Start } from '../../support/chat.js'
import { openAiApp, USAGE, type UpstreamRequest } from '../../support/openai.js'
import { assertProblem, assertValidation } from '../../support/problems.js'
import { hasText, named, openSse, parseSse, replyOf, textEvents, textOf, type Headers, type SseEvent } from '../../support/sse.js'
import { until } from '../../support/until.js'
import { login, signUp } from '../../support/users.js'

const SLOW_ERROR = 'The reply took too long and was stopped'

interface Done { chat_id: string, message_id: string, status: string }

/**
 * The shape every finished stream has: `start` first, text events, at most one `error`, `done` last,
 * with the same ids in `start` and `done` and every text event naming the chat.
 */
function assertStreamShape (t: Test, events: SseEvent[], expect: { status: string, error?: string }) {
  t.equal(events[0]?.event, 'start', 'start comes first')
  t.equal(events.at(-1)?.event, 'done', 'done comes last')
  const start = events[0]!.data as Start
  const done = events.at(-1)!.data as Done
  t.same(Object.keys(start).sort(), ['chat_id', 'message_id'], 'start is { chat_id, message_id }')
  t.same(Object.keys(done).sort(), ['chat_id', 'message_id', 'status'], 'done is { chat_id, message_id, status }')
  t.match(start.chat_id, hex24)
  t.match(start.message_id, hex24)
  t.same(done, { chat_id: start.chat_id, message_id: start.message_id, status: expect.status }, `done: same ids, status ${expect.status}`)
  const middle = events.slice(1, -1)
  const errors = named<{ detail: string }>(events, 'error')
  if (expect.error === undefined) {
    t.same(errors, [], 'no error event')
  } else {
    t.same(errors, [{ detail: expect.error }], `one error event: "${expect.error}"`)
    t.equal(events.at(-2)?.event, 'error', 'the error comes just before done')
  }
  t.ok(middle.every((e) => e.event === undefined || e.event === 'error'), 'only text events (and an error) between start and done')
  t.ok(textEvents(events).every((p) => p.chat_id === start.chat_id && typeof p.text === 'string'), 'each text event names the chat')
  return { start, done, text: textOf(events) }
}

async function regenerate (app: TestApp, headers: Headers, chatId: string) {
  return await app.inject({ method: 'POST', url: `/chat/${chatId}/regenerate`, headers })
}

async function stop (app: TestApp, headers: Headers, chatId: string) {
  return await app.inject({ method: 'POST', url: `/chat/${chatId}/stop`, headers })
}

/** The user's held stream slots (claims under `stream-slot:{user}:{n}`). */
const slotsOf = (app: TestApp, userId: string) =>
  db(app).collection<{ _id: string }>('claims').countDocuments({ _id: { $regex: `^stream-slot:${userId}:` } })

async function countOf (app: TestApp, userId: string) {
  const owner = new ObjectId(userId)
  return { chats: await chats(app).countDocuments({ user_id: owner }), messages: await messages(app).countDocuments({ user_id: owner }) }
}

const hasDone = (events: SseEvent[]) => events.some((e) => e.event === 'done')

/** Opens a `[slow]` stream (one word a second) and waits for its first word; closed when `t` ends. */
async function openSlow (t: Test, base: string, headers: Headers, payload: Record<string, unknown> = { message: '[slow] take your time' }) {
  const live = await openSse(`${base}/chat/stream`, headers, payload)
  t.teardown(() => live.close())
  if (live.status !== 200) throw new Error(`stream refused: ${live.status} ${await live.ended.then((e) => e.body)}`)
  const events = await live.until(hasText(1))
  return { live, start: events[0]!.data as Start }
}

/** Retries `attempt` until it answers `status` (for at most 5 s), returning that answer. */
async function answered (attempt: () => Promise<LightMyRequestResponse>, status: number) {
  return await until(async () => {
    const res = await attempt()
    return res.statusCode === status && res
  }, 5000, `an answer ${status}`)
}

/** Events with their data as objects, as these tests read them. */
type Event = { event?: string, data: Record<string, unknown> }
const parseEvents = (body: string) => parseSse(body) as Event[]

async function storedReply (app: TestApp, id: unknown) {
  return await db(app).collection('messages').findOne({ _id: new ObjectId(String(id)) })
}

t.test('POST /chat/stream starts a new chat and streams the reply', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)

  const res = await stream(app, alice.headers, { message: 'Hello there' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  t.match(res.headers['cache-control'], /no-cache/)
  t.equal(res.headers['x-accel-buffering'], 'no')

  const events = parseSse(res.body)
  const pieces = textEvents(events)
  t.ok(pieces.length > 0, 'events arrived')
  t.same(pieces.map((p) => Object.keys(p).sort()), pieces.map(() => ['chat_id', 'text']), 'each event is exactly { text, chat_id }')
  t.notOk(events.some((e) => e.event === 'error'), 'no error event')
  const chatId = pieces[0]!.chat_id
  t.match(chatId, hex24)
  t.ok(pieces.every((p) => p.chat_id === chatId), 'every event names the same chat')
  t.ok(pieces.every((p) => typeof p.text === 'string' && /^\S+ $/.test(p.text)), 'one word and a space per event, as the original')

  const reply = pieces.map((p) => p.text).join('')
  const words = reply.trim().split(/\s+/)
  t.ok(words.length >= 20 && words.length <= 40, `the demo reply is 20 to 40 words (got ${words.length})`)

  const chats = await storedChats(app, alice.user.id)
  t.equal(chats.length, 1, 'one chat created')
  t.equal(chats[0]!._id.toHexString(), chatId)
  t.equal(chats[0]!.title, 'Hello there', 'a short message is the whole title')

  const stored = await storedMessages(app, { chat_id: new ObjectId(chatId) })
  t.same(stored.map((m) => m.role), ['user', 'assistant'], 'user message, then the reply')
  t.equal(stored[0]!.content, 'Hello there')
  t.equal(stored[1]!.content, reply, 'the stored reply is exactly what was streamed')
  t.equal(stored[1]!.status, 'complete')

  const got = (await app.inject({ url: `/chat/${chatId}`, headers: alice.headers })).json()
  t.same(got.messages.map((m: { role: string, content: string, status?: string }) => [m.role, m.content, m.status]),
    [['user', 'Hello there', undefined], ['assistant', reply, 'complete']], 'GET shows both messages')
})

t.test('POST /chat/stream titles a new chat from the start of a long message', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)

  const long = 'Could you explain how the Roman republic slowly turned into an empire over the first century BC?'
  const res = await stream(app, alice.headers, { message: long })
  t.equal(res.statusCode, 200)
  const title = (await storedChats(app, alice.user.id))[0]!.title as string
  t.equal(title, 'Could you explain how the Roman republic slowly turned into', 'cut at the last word boundary within 60 characters')
  t.ok(title.length <= 60)
  t.ok(long.startsWith(title) && long[title.length] === ' ', 'ends at a word boundary')

  const oneWord = 'x'.repeat(100)
  await stream(app, alice.headers, { message: oneWord })
  const titles = (await storedChats(app, alice.user.id)).map((c) => c.title)
  t.ok(titles.includes('x'.repeat(60)), 'a single long word is cut at 60 characters')
})

t.test('POST /chat/stream with chat_id continues that chat', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)

  const first = await stream(app, alice.headers, { message: 'First question' })
  const chatId = textEvents(parseSse(first.body))[0]!.chat_id
  const firstReply = replyOf(first.body)

  const second = await stream(app, alice.headers, { message: 'A follow-up', chat_id: chatId })
  t.equal(second.statusCode, 200)
  const pieces = textEvents(parseSse(second.body))
  t.ok(pieces.length > 0)
  t.ok(pieces.every((p) => p.chat_id === chatId), 'events name the continued chat')
  const secondReply = replyOf(second.body)

  const chats = await storedChats(app, alice.user.id)
  t.equal(chats.length, 1, 'no new chat')
  t.equal(chats[0]!.title, 'First question', 'the title stays')

  const got = (await app.inject({ url: `/chat/${chatId}`, headers: alice.headers })).json()
  t.same(got.messages.map((m: { role: string, content: string }) => [m.role, m.content]), [
    ['user', 'First question'], ['assistant', firstReply], ['user', 'A follow-up'], ['assistant', secondReply]
  ], 'appended in order')

  // A chat made with POST /chat/ can be continued too.
  const made = await createChat(app, alice.headers, { title: 'Made', messages: [{ role: 'user', content: 'earlier' }] })
  const third = await stream(app, alice.headers, { message: 'later', chat_id: made.id })
  t.equal(third.statusCode, 200)
  const madeMessages = await storedMessages(app, { chat_id: new ObjectId(made.id) })
  t.same(madeMessages.map((m) => [m.role, m.content]), [['user', 'earlier'], ['user', 'later'], ['assistant', replyOf(third.body)]])
})

t.test('POST /chat/stream to a chat the caller cannot see is 404 before any stream, and stores nothing', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const mallory = await signUp(app)
  const chat = await createChat(app, alice.headers, { title: 'Private', messages: [{ role: 'user', content: 'secret' }] })

  for (const [name, id, headers] of unreachableChats(chat.id, alice.headers, mallory.headers)) {
    await t.test(name, async (t) => {
      const res = await stream(app, headers, { message: 'let me in', chat_id: id })
      assertProblem(t, res, 404, 'Chat not found')
      t.notMatch(res.headers['content-type'], /event-stream/, 'no stream')
    })
  }

  t.equal(await db(app).collection('chats').countDocuments({}), 1, 'no chat created')
  t.equal(await db(app).collection('messages').countDocuments({}), 1, 'no message stored')
  t.same(await storedChats(app, mallory.user.id), [])
})

t.test('POST /chat/stream validation: 422 and nothing stored', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)

  const cases: Array<[string, unknown, Array<string | number>]> = [
    ['empty message', { message: '' }, ['body', 'message']],
    ['message over 32000 characters', { message: 'a'.repeat(32_001) }, ['body', 'message']],
    ['missing message', {}, ['body', 'message']],
    ['number as message', { message: 5 }, ['body', 'message']],
    ['operator object as message', { message: { $gt: '' } }, ['body', 'message']],
    ['operator object as chat_id', { message: 'hi', chat_id: { $ne: null } }, ['body', 'chat_id']]
  ]
  for (const [name, payload, loc] of cases) {
    await t.test(name, async (t) => {
      const res = await stream(app, alice.headers, payload as Record<string, unknown>)
      assertValidation(t, res, loc)
    })
  }
  t.equal(await db(app).collection('chats').countDocuments({}), 0, 'no chat created')
  t.equal(await db(app).collection('messages').countDocuments({}), 0, 'no message stored')

  const longest = await stream(app, alice.headers, { message: 'a'.repeat(32_000) })
  t.equal(longest.statusCode, 200, 'exactly 32000 characters is fine')
  t.equal((await storedMessages(app, { role: 'user' }))[0]?.content.length, 32_000)
})

t.test('the stream response carries the CORS headers set by hooks', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const res = await stream(app, { ...alice.headers, origin: 'http://localhost:3000' }, { message: 'cors?' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['access-control-allow-origin'], '*')
  t.match(res.headers['x-request-id'], /\S/, 'request id header present too')
  t.match(res.headers['content-type'], /^text\/event-stream/)
})

t.test('a client that disconnects mid-stream leaves an interrupted reply with what was sent', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '30' })
  const alice = await signUp(app)
  const base = await listen(app)

  const live = await openSse(`${base}/chat/stream`, alice.headers, { message: 'Tell me a long story' })
  const received = await live.until(hasText(3))
  live.close()
  t.equal(live.status, 200)
  t.match(live.headers['content-type'], /^text\/event-stream/)
  const pieces = textEvents(received).slice(0, 3)
  t.equal(pieces.length, 3)
  const chatId = pieces[0]!.chat_id
  const seen = pieces.map((p) => p.text).join('')

  const reply = await until(() => db(app).collection('messages').findOne({ chat_id: new ObjectId(chatId), role: 'assistant', status: { $ne: 'streaming' } }),
    5000, 'the reply to end')
  t.equal(reply?.status, 'interrupted', 'the reply is stored as interrupted')
  t.ok(typeof reply?.content === 'string' && reply.content.startsWith(seen), 'it keeps at least everything the client received')

  const got = (await app.inject({ url: `/chat/${chatId}`, headers: alice.headers })).json()
  t.same(got.messages.map((m: { role: string, status?: string }) => [m.role, m.status]), [['user', undefined], ['assistant', 'interrupted']],
    'GET shows the user message and the interrupted reply')
  t.equal(got.messages[0].content, 'Tell me a long story')
})

t.test('concurrent sends to one chat all succeed and keep every message, in distinct positions', async (t) => {
  const app = await build(t, { MAX_STREAMS_PER_USER: '6' })
  const { headers } = await signUp(app)
  const chat = await createChat(app, headers, { title: 'busy' })
  const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => stream(app, headers, { message: `message ${i}`, chat_id: chat.id })))
  t.same(answers.map((a) => a.statusCode), Array(6).fill(200), 'every send answered 200')
  const stored = await db(app).collection('messages').find({ chat_id: new ObjectId(chat.id) }).toArray()
  t.equal(stored.length, 12, 'six user messages and six replies')
  t.equal(new Set(stored.map((m) => m.seq)).size, 12, 'no two share a position')
  t.equal(stored.filter((m) => m.status === 'complete').length, 6, 'every reply complete')
})

t.test('stream events: start, text, done sent once the reply is stored; the demo directives', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '0' })
  const alice = await signUp(app)

  await t.test('a complete reply: start carries the reply id, done says complete', async (t) => {
    const res = await stream(app, alice.headers, { message: 'Hello' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/event-stream/)
    const { start, text } = assertStreamShape(t, parseSse(res.body), { status: 'complete' })
    t.ok(text.length > 0, 'some text')
    const stored = await storedMessages(app, start.chat_id)
    t.same(stored.map((m) => [m.role, m.status]), [['user', undefined], ['assistant', 'complete']])
    t.equal(stored[1]!._id.toHexString(), start.message_id, 'message_id is the stored reply\'s id')
    t.equal(stored[1]!.content, text)
  })

  await t.test('done arrives only after the reply is stored (read over a real socket)', async (t) => {
    const base = await listen(app)
    const live = await openSse(`${base}/chat/stream`, alice.headers, { message: 'Are you stored?' })
    const events = await live.until(hasDone)
    // Straight away, before anything else can happen: the store already says complete.
    const done = named<Done>(events, 'done')[0]!
    const reply = await messages(app).findOne({ _id: new ObjectId(done.message_id) })
    t.equal(reply?.status, 'complete', 'stored as complete when done is read')
    t.equal(reply?.content, textOf(events))
    const end = await live.ended
    t.ok(end.complete, 'the server ends the response after done')
    t.equal(end.events.at(-1)?.event, 'done', 'nothing after done')
  })

  await t.test('[fail]: 502 problem, the user message stored and an empty reply with status error', async (t) => {
    const res = await stream(app, alice.headers, { message: '[fail] please' })
    assertProblem(t, res, 502, 'The assistant is unavailable (demo [fail])')
    t.notMatch(res.headers['content-type'], /event-stream/, 'no stream')
    const chat = await chats(app).findOne({ user_id: new ObjectId(alice.user.id), title: '[fail] please' })
    t.ok(chat, 'the new chat is stored')
    const got = await getChat(app, alice.headers, chat!._id.toHexString())
    t.same(got.messages.map((m) => [m.role, m.content, m.status]), [['user', '[fail] please', undefined], ['assistant', '', 'error']],
      'GET shows the message and the failed reply')

    const continued = await createChat(app, alice.headers, { messages: [{ role: 'user', content: 'earlier' }, { role: 'assistant', content: 'ok' }] })
    const again = await stream(app, alice.headers, { message: 'now [fail]', chat_id: continued.id })
    assertProblem(t, again, 502, 'The assistant is unavailable (demo [fail])')
    const stored = await storedMessages(app, continued.id)
    t.same(stored.map((m) => [m.role, m.content, m.status]),
      [['user', 'earlier', undefined], ['assistant', 'ok', 'complete'], ['user', 'now [fail]', undefined], ['assistant', '', 'error']],
      'in a continued chat too')
  })

  await t.test('[error]: five words, an error event, done with status error; stored as error with those words', async (t) => {
    const res = await stream(app, alice.headers, { message: 'go [error]' })
    t.equal(res.statusCode, 200)
    const { start, text } = assertStreamShape(t, parseSse(res.body), { status: 'error', error: 'The assistant failed mid-reply (demo [error])' })
    t.equal(textEvents(parseSse(res.body)).length, 5, 'five words')
    const reply = await messages(app).findOne({ _id: new ObjectId(start.message_id) })
    t.equal(reply?.status, 'error')
    t.equal(reply?.content, text, 'the five words are kept')
    const got = await getChat(app, alice.headers, start.chat_id)
    t.same(got.messages.at(-1), { ...got.messages.at(-1), id: start.message_id, role: 'assistant', content: text, status: 'error' })
  })

  await t.test('[cut]: the connection drops after five words, with no error or done; stored interrupted', async (t) => {
    const base = await listen(app)
    const live = await openSse(`${base}/chat/stream`, alice.headers, { message: 'go [cut]' })
    t.equal(live.status, 200)
    const end = await live.ended
    t.notOk(end.complete, 'the response did not end properly: the connection was dropped')
    t.same(end.events.map((e) => e.event), ['start', undefined, undefined, undefined, undefined, undefined], 'start and five words, nothing else')
    const start = end.events[0]!.data as Start
    const reply = await settledReply(app, start.message_id)
    t.equal(reply?.status, 'interrupted')
    t.equal(reply?.content, textOf(end.events), 'the five words are kept')
  })
})

t.test('a ": ping" comment comes after STREAM_PING_SECONDS without an event', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '2500', STREAM_PING_SECONDS: '1' })
  const alice = await signUp(app)
  const base = await listen(app)
  const live = await openSse(`${base}/chat/stream`, alice.headers, { message: 'waiting' })
  t.teardown(() => live.close())
  await live.until(hasText(1))
  const beforeFirstWord = live.body.slice(0, live.body.search(/id: \d+\ndata: \{"text"/))
  t.match(beforeFirstWord, /^event: start\n.*\n\n(: ping\n\n)+$/, 'start, then pings while the first word takes 2.5 s')
  live.close()
})

t.test('client_message_id makes a send idempotent', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '0' })
  const alice = await signUp(app)

  await t.test('a retry without chat_id replays the new chat\'s reply and stores nothing', async (t) => {
    const first = await stream(app, alice.headers, { message: 'Hello once', client_message_id: 'send-1' })
    t.equal(first.statusCode, 200)
    const original = assertStreamShape(t, parseSse(first.body), { status: 'complete' })
    const before = await countOf(app, alice.user.id)

    const retry = await stream(app, alice.headers, { message: 'Hello once', client_message_id: 'send-1' })
    t.equal(retry.statusCode, 200)
    t.match(retry.headers['content-type'], /^text\/event-stream/)
    const replayed = assertStreamShape(t, parseSse(retry.body), { status: 'complete' })
    t.same(replayed.start, original.start, 'same chat_id and message_id in start')
    t.same(replayed.done, original.done, 'same done')
    t.equal(replayed.text, original.text, 'same text')
    t.same(await countOf(app, alice.user.id), before, 'no chat or message stored')
    const userMessages = await messages(app).find({ chat_id: new ObjectId(original.start.chat_id), role: 'user' }).toArray()
    t.same(userMessages.map((m) => m.client_message_id), ['send-1'], 'the id is stored with the one user message')
  })

  await t.test('a retry in a chat replays; different ids and another chat send anew', async (t) => {
    const chat = await createChat(app, alice.headers, { title: 'retries' })
    const first = await stream(app, alice.headers, { message: 'question', chat_id: chat.id, client_message_id: 'q-1' })
    const original = assertStreamShape(t, parseSse(first.body), { status: 'complete' })
    t.equal(original.start.chat_id, chat.id)
    t.equal((await storedMessages(app, chat.id)).length, 2)

    const retry = await stream(app, alice.headers, { message: 'question', chat_id: chat.id, client_message_id: 'q-1' })
    const replayed = assertStreamShape(t, parseSse(retry.body), { status: 'complete' })
    t.same([replayed.start, replayed.done, replayed.text], [original.start, original.done, original.text], 'replayed as it was')
    t.equal((await storedMessages(app, chat.id)).length, 2, 'nothing new in the chat')

    const other = await stream(app, alice.headers, { message: 'question', chat_id: chat.id, client_message_id: 'q-2' })
    const fresh = assertStreamShape(t, parseSse(other.body), { status: 'complete' })
    t.not(fresh.start.message_id, original.start.message_id, 'a different id is a new send')
    const noId = await stream(app, alice.headers, { message: 'question', chat_id: chat.id })
    t.not(assertStreamShape(t, parseSse(noId.body), { status: 'complete' }).start.message_id, original.start.message_id, 'so is a send without one')
    t.same((await storedMessages(app, chat.id)).map((m) => [m.role, m.client_message_id]),
      [['user', 'q-1'], ['assistant', undefined], ['user', 'q-2'], ['assistant', undefined], ['user', undefined], ['assistant', undefined]],
      'three exchanges stored')

    const elsewhere = await createChat(app, alice.headers, { title: 'elsewhere' })
    const sameIdElsewhere = await stream(app, alice.headers, { message: 'question', chat_id: elsewhere.id, client_message_id: 'q-1' })
    const there = assertStreamShape(t, parseSse(sameIdElsewhere.body), { status: 'complete' })
    t.equal(there.start.chat_id, elsewhere.id, 'the same id in another chat is a send to that chat')
    t.equal((await storedMessages(app, elsewhere.id)).length, 2)
  })

  await t.test('a replayed failure keeps its status and error', async (t) => {
    const first = await stream(app, alice.headers, { message: 'break [error]', client_message_id: 'err-1' })
    const original = assertStreamShape(t, parseSse(first.body), { status: 'error', error: 'The assistant failed mid-reply (demo [error])' })
    const before = await countOf(app, alice.user.id)
    const retry = await stream(app, alice.headers, { message: 'break [error]', client_message_id: 'err-1' })
    const replayed = assertStreamShape(t, parseSse(retry.body), { status: 'error', error: 'The assistant failed mid-reply (demo [error])' })
    t.same([replayed.start, replayed.text], [original.start, original.text], 'same ids and the five words')
    t.same(await countOf(app, alice.user.id), before, 'nothing stored')
  })

  await t.test('a retry after a regeneration replays the reply that replaced the first, and stores nothing', async (t) => {
    const chat = await createChat(app, alice.headers, { title: 'regenerated' })
    const payload = { message: 'answer me', chat_id: chat.id, client_message_id: 'regen-1' }
    const first = assertStreamShape(t, parseSse((await stream(app, alice.headers, payload)).body), { status: 'complete' })
    const again = assertStreamShape(t, parseSse((await regenerate(app, alice.headers, chat.id)).body), { status: 'complete' })
    t.not(again.start.message_id, first.start.message_id, 'the regeneration wrote a new reply')

    const retry = await stream(app, alice.headers, payload)
    t.equal(retry.statusCode, 200)
    const replayed = assertStreamShape(t, parseSse(retry.body), { status: 'complete' })
    t.same([replayed.start, replayed.text], [again.start, again.text], 'the retry shows the regenerated reply')
    const stored = await storedMessages(app, chat.id)
    t.same(stored.map((m) => [m.role, m.client_message_id]), [['user', 'regen-1'], ['assistant', undefined]], 'one user message, one reply: nothing stored twice')
    t.equal(stored[1]!._id.toHexString(), again.start.message_id, 'the reply is the regenerated one')
  })

  await t.test('a retry after a stop replays the interrupted reply', async (t) => {
    const base = await listen(app)
    const payload = { message: '[slow] then stop', client_message_id: 'stop-1' }
    const { live, start } = await openSlow(t, base, alice.headers, payload)
    t.equal((await stop(app, alice.headers, start.chat_id)).statusCode, 202)
    const ended = await live.ended
    t.equal(named<Done>(ended.events, 'done')[0]?.status, 'interrupted', 'the stream ended interrupted')

    const retry = await stream(app, alice.headers, payload)
    const replayed = assertStreamShape(t, parseSse(retry.body), { status: 'interrupted' })
    t.same([replayed.start, replayed.text], [start, textOf(ended.events)], 'same ids and the words sent before the stop')
    t.same((await storedMessages(app, start.chat_id)).map((m) => [m.role, m.status]), [['user', undefined], ['assistant', 'interrupted']], 'nothing stored twice')
  })

  await t.test('a retry into a chat deleted since is a 404, and stores nothing', async (t) => {
    const chat = await createChat(app, alice.headers, { title: 'to delete' })
    const payload = { message: 'soon gone', chat_id: chat.id, client_message_id: 'gone-1' }
    t.equal((await stream(app, alice.headers, payload)).statusCode, 200)
    t.equal((await app.inject({ method: 'DELETE', url: `/chat/${chat.id}`, headers: alice.headers })).statusCode, 200)
    assertProblem(t, await stream(app, alice.headers, payload), 404, 'Chat not found')
    t.same(await storedMessages(app, chat.id), [], 'no message stored for the deleted chat')
  })

  await t.test('client_message_id must be 1 to 64 characters', async (t) => {
    const before = await countOf(app, alice.user.id)
    assertValidation(t, await stream(app, alice.headers, { message: 'hi', client_message_id: '' }), ['body', 'client_message_id'])
    assertValidation(t, await stream(app, alice.headers, { message: 'hi', client_message_id: 'x'.repeat(65) }), ['body', 'client_message_id'])
    assertValidation(t, await stream(app, alice.headers, { message: 'hi', client_message_id: 7 }), ['body', 'client_message_id'])
    t.same(await countOf(app, alice.user.id), before, 'nothing stored')
    const longest = await stream(app, alice.headers, { message: 'hi', client_message_id: 'x'.repeat(64) })
    t.equal(longest.statusCode, 200, '64 characters is fine')
  })

  await t.test('a send to a chat that is not the caller\'s is 404, and leaves the id free', async (t) => {
    const mallory = await signUp(app)
    const alicesChat = await createChat(app, alice.headers, { title: 'private' })
    const refused = await stream(app, mallory.headers, { message: 'let me in', chat_id: alicesChat.id, client_message_id: 'm-1' })
    assertProblem(t, refused, 404, 'Chat not found')
    const startedAt = Date.now()
    const again = await stream(app, mallory.headers, { message: 'let me in', chat_id: alicesChat.id, client_message_id: 'm-1' })
    assertProblem(t, again, 404, 'Chat not found')
    t.ok(Date.now() - startedAt < 5000, 'the retry is refused at once, not after waiting on the first send')
    t.equal((await storedMessages(app, alicesChat.id)).length, 0, 'nothing stored in alice\'s chat')
    t.same(await countOf(app, mallory.user.id), { chats: 0, messages: 0 }, 'nothing stored for mallory')

    const own = await createChat(app, mallory.headers, { title: 'mine' })
    const sent = await stream(app, mallory.headers, { message: 'in my chat', chat_id: own.id, client_message_id: 'm-1' })
    t.equal(sent.statusCode, 200)
    const mine = assertStreamShape(t, parseSse(sent.body), { status: 'complete' })
    t.equal(mine.start.chat_id, own.id)
    t.same((await storedMessages(app, own.id)).map((m) => [m.role, m.content]), [['user', 'in my chat'], ['assistant', mine.text]], 'stored')
  })
})

t.test('two concurrent sends with one client_message_id store one exchange and show the same reply', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '20' })
  const alice = await signUp(app)
  const chat = await createChat(app, alice.headers, { title: 'race' })
  const payload = { message: 'only once please', chat_id: chat.id, client_message_id: 'race-1' }
  const [a, b] = await Promise.all([stream(app, alice.headers, payload), stream(app, alice.headers, payload)])
  t.equal(a.statusCode, 200)
  t.equal(b.statusCode, 200)
  const first = assertStreamShape(t, parseSse(a.body), { status: 'complete' })
  const second = assertStreamShape(t, parseSse(b.body), { status: 'complete' })
  t.same(second.start, first.start, 'the same reply id in both')
  t.ok(first.text.length > 0)
  t.equal(second.text, first.text, 'both show the same text')
  const stored = await storedMessages(app, chat.id)
  t.same(stored.map((m) => [m.role, m.content, m.status]), [['user', 'only once please', undefined], ['assistant', first.text, 'complete']],
    'exactly one user message and one reply')

  // Both without a chat: one new chat.
  const fresh = { message: 'a new chat, once', client_message_id: 'race-2' }
  const [c, d] = await Promise.all([stream(app, alice.headers, fresh), stream(app, alice.headers, fresh)])
  const third = assertStreamShape(t, parseSse(c.body), { status: 'complete' })
  const fourth = assertStreamShape(t, parseSse(d.body), { status: 'complete' })
  t.same(fourth.start, third.start)
  t.equal(fourth.text, third.text)
  t.equal(await chats(app).countDocuments({ user_id: new ObjectId(alice.user.id), title: 'a new chat, once' }), 1, 'one chat created')
  t.equal((await storedMessages(app, third.start.chat_id)).length, 2, 'with one exchange')
})

t.test('MAX_STREAMS_PER_USER: a fourth live stream of a user is 429 and stores nothing; others unaffected; slots come back', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '0' })
  const base = await listen(app)
  const alice = await signUp(app)
  const bob = await signUp(app)
  const done = await stream(app, alice.headers, { message: 'an earlier, finished chat' })
  const finished = assertStreamShape(t, parseSse(done.body), { status: 'complete' })

  const open = await Promise.all([1, 2, 3].map((i) => openSlow(t, base, alice.headers, { message: `[slow] stream ${i}` })))
  const before = await countOf(app, alice.user.id)

  const fourth = await stream(app, alice.headers, { message: 'one too many' })
  assertProblem(t, fourth, 429, 'At most 3 replies can stream at once; wait for one to end')
  t.equal(fourth.headers['retry-after'], '5', 'Retry-After')
  const regenerated = await regenerate(app, alice.headers, finished.start.chat_id)
  assertProblem(t, regenerated, 429)
  t.equal(regenerated.headers['retry-after'], '5')
  t.same(await countOf(app, alice.user.id), before, 'nothing stored for them')
  t.ok(await messages(app).findOne({ _id: new ObjectId(finished.start.message_id) }), 'the refused regeneration left the old reply in place')
  t.equal(await messages(app).countDocuments({ content: 'one too many' }), 0)

  const bobs = await stream(app, bob.headers, { message: 'my turn' })
  t.equal(bobs.statusCode, 200, 'another user can still stream')
  assertStreamShape(t, parseSse(bobs.body), { status: 'complete' })

  // One stopped, two closed by their clients: all three slots free again once stored.
  const second = await login(app, alice.email)
  t.equal((await stop(app, { authorization: `Bearer ${second}` }, open[0]!.start.chat_id)).statusCode, 202)
  open[1]!.live.close()
  open[2]!.live.close()
  const stopped = await open[0]!.live.ended
  t.equal(named<Done>(stopped.events, 'done')[0]?.status, 'interrupted')

  const again = await answered(() => stream(app, alice.headers, { message: 'room again' }), 200)
  t.equal(again.statusCode, 200, 'the user can stream again')
  for (const { start } of open) t.equal((await settledReply(app, start.message_id))?.status, 'interrupted', 'the open streams were stored interrupted')
  t.ok(await until(async () => await slotsOf(app, alice.user.id) === 0, 5000, 'the slots to be given back'), 'and their slots given back')
  const three = await Promise.all([1, 2, 3].map(() => stream(app, alice.headers, { message: 'all three slots' })))
  t.same(three.map((r) => r.statusCode), [200, 200, 200], 'all three slots are free')
  t.equal(await slotsOf(app, alice.user.id), 0, 'a slot is given back before done is sent')
})

t.test('MAX_LIVE_STREAMS: one more stream than an instance allows is 503 with Retry-After', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '0', MAX_LIVE_STREAMS: '1' })
  const base = await listen(app)
  const alice = await signUp(app)
  const bob = await signUp(app)
  const { live } = await openSlow(t, base, alice.headers)

  const refused = await stream(app, bob.headers, { message: 'no room' })
  assertProblem(t, refused, 503)
  t.equal(refused.headers['retry-after'], '5', 'Retry-After')
  t.same(await countOf(app, bob.user.id), { chats: 0, messages: 0 }, 'nothing stored for bob')

  live.close()
  const later = await answered(() => stream(app, bob.headers, { message: 'room now' }), 200)
  t.equal(later.statusCode, 200, 'once the open stream ends, the instance streams again')

  const atOnce = await Promise.all([alice, bob].map((user) => stream(app, user.headers, { message: 'both at the same moment' })))
  t.same(atOnce.map((r) => r.statusCode).sort(), [200, 503], 'two sends at the same moment: one streams, one is refused')
})

t.test('MAX_STREAM_SECONDS: a reply streaming too long is ended with an error event and stored interrupted', async (t) => {
  const app = await build(t, { MAX_STREAM_SECONDS: '5' })
  const alice = await signUp(app)
  const startedAt = Date.now()
  const res = await stream(app, alice.headers, { message: '[slow] a very long answer please' })
  const elapsed = Date.now() - startedAt
  t.equal(res.statusCode, 200)
  t.ok(elapsed >= 4900 && elapsed < 15_000, `ended after about 5 s (${elapsed} ms)`)
  const { done, text } = assertStreamShape(t, parseSse(res.body), { status: 'interrupted', error: SLOW_ERROR })
  const words = textEvents(parseSse(res.body)).length
  t.ok(words >= 1 && words <= 5, `at most one word a second until then (${words})`)
  const reply = await messages(app).findOne({ _id: new ObjectId(done.message_id) })
  t.equal(reply?.status, 'interrupted')
  t.equal(reply?.content, text, 'what was sent is kept')
})

t.test('POST /chat/{id}/stop', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '0' })
  const base = await listen(app)
  const alice = await signUp(app)
  const mallory = await signUp(app)
  const otherSession = { authorization: `Bearer ${await login(app, alice.email)}` }

  await t.test('from another session: 202, the stream ends interrupted without an error event, what was sent is kept', async (t) => {
    const { live, start } = await openSlow(t, base, alice.headers)
    await live.until(hasText(2))

    // Someone else's stop changes nothing.
    assertProblem(t, await stop(app, mallory.headers, start.chat_id), 404, 'Chat not found')
    const stillGoing = await live.until(hasText(3))
    t.equal(named(stillGoing, 'done').length, 0, 'the stream goes on after another user\'s stop')
    t.notOk((await messages(app).findOne({ _id: new ObjectId(start.message_id) }))?.stop_requested, 'no stop recorded')

    const res = await stop(app, otherSession, start.chat_id)
    t.equal(res.statusCode, 202)
    t.same(res.json(), { detail: 'Stopping the reply' })
    const end = await live.ended
    t.ok(end.complete, 'the server ends the response properly')
    const { done, text } = assertStreamShape(t, end.events, { status: 'interrupted' })
    t.equal(done.message_id, start.message_id)
    t.ok(textEvents(end.events).length >= 3 && textEvents(end.events).length < 20, 'stopped early')
    const reply = await messages(app).findOne({ _id: new ObjectId(start.message_id) })
    t.equal(reply?.status, 'interrupted', 'stored interrupted')
    t.equal(reply?.content, text, 'with the text sent so far')
    const got = await getChat(app, alice.headers, start.chat_id)
    t.same(got.messages.map((m) => [m.role, m.status]), [['user', undefined], ['assistant', 'interrupted']])

    assertProblem(t, await stop(app, alice.headers, start.chat_id), 409, 'No reply is streaming in this chat')
  })

  await t.test('nothing streaming is 409; another user\'s, unknown and malformed ids are 404', async (t) => {
    const chat = await createChat(app, alice.headers, { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] })
    assertProblem(t, await stop(app, alice.headers, chat.id), 409, 'No reply is streaming in this chat')
    const empty = await createChat(app, alice.headers)
    assertProblem(t, await stop(app, alice.headers, empty.id), 409, 'No reply is streaming in this chat')
    for (const [id, headers] of [[chat.id, mallory.headers], [new ObjectId().toHexString(), alice.headers], ['abc', alice.headers], ['z'.repeat(24), alice.headers]] as const) {
      assertProblem(t, await stop(app, headers, id), 404, 'Chat not found')
    }
    t.same((await storedMessages(app, chat.id)).map((m) => [m.content, m.status, m.stop_requested]),
      [['hi', undefined, undefined], ['hello', 'complete', undefined]], 'the chat is unchanged')
  })
})

t.test('a stop sent to another instance on the same database ends the stream within 2 s', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '0' })
  const other = await build(t, { DATABASE_NAME: app.env.DATABASE_NAME! })
  t.equal(other.env.DATABASE_NAME, app.env.DATABASE_NAME, 'one database, two instances')
  const base = await listen(app)
  const alice = await signUp(app)
  const { live, start } = await openSlow(t, base, alice.headers)

  const stoppedAt = Date.now()
  const res = await stop(other, alice.headers, start.chat_id)
  t.equal(res.statusCode, 202)
  t.same(res.json(), { detail: 'Stopping the reply' })
  const end = await live.ended
  const elapsed = Date.now() - stoppedAt
  t.ok(elapsed < 2000, `the stream ended ${elapsed} ms after the stop`)
  const { text } = assertStreamShape(t, end.events, { status: 'interrupted' })
  const reply = await messages(app).findOne({ _id: new ObjectId(start.message_id) })
  t.equal(reply?.status, 'interrupted')
  t.equal(reply?.content, text)
})

t.test('POST /chat/{id}/regenerate', async (t) => {
  const app = await build(t, { ASSISTANT_WORD_DELAY_MS: '0' })
  const alice = await signUp(app)
  const mallory = await signUp(app)

  await t.test('replaces the last reply with a new one, streamed like /chat/stream', async (t) => {
    const first = assertStreamShape(t, parseSse((await stream(app, alice.headers, { message: 'first' })).body), { status: 'complete' })
    const chatId = first.start.chat_id
    const second = assertStreamShape(t, parseSse((await stream(app, alice.headers, { message: 'second', chat_id: chatId })).body), { status: 'complete' })
    const before = await getChat(app, alice.headers, chatId)

    const res = await regenerate(app, alice.headers, chatId)
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/event-stream/)
    const regenerated = assertStreamShape(t, parseSse(res.body), { status: 'complete' })
    t.equal(regenerated.start.chat_id, chatId)
    t.not(regenerated.done.message_id, second.start.message_id, 'a new reply id')
    t.ok(regenerated.text.length > 0)

    const after = await getChat(app, alice.headers, chatId)
    t.equal(after.messages.length, before.messages.length, 'as many messages as before')
    t.same(after.messages.slice(0, -1), before.messages.slice(0, -1), 'everything before the last reply unchanged')
    t.same(after.messages.at(-1), { ...after.messages.at(-1), id: regenerated.done.message_id, role: 'assistant', content: regenerated.text, status: 'complete' },
      'the last message is the new reply')
    t.notOk(after.messages.some((m) => m.id === second.start.message_id), 'the old reply is gone')
    t.equal(await messages(app).countDocuments({ _id: new ObjectId(second.start.message_id) }), 0, 'and not stored')
    const list = (await app.inject({ url: '/chat/', headers: alice.headers })).json()
    t.equal(list.find((c: { id: string }) => c.id === chatId).last_message.id, regenerated.done.message_id, 'the list shows the new reply last')
  })

  await t.test('a chat ending with a user message gets a reply added, and can go on', async (t) => {
    const chat = await createChat(app, alice.headers, { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'anyone?' }] })
    const res = await regenerate(app, alice.headers, chat.id)
    t.equal(res.statusCode, 200)
    const added = assertStreamShape(t, parseSse(res.body), { status: 'complete' })
    const got = await getChat(app, alice.headers, chat.id)
    t.same(got.messages.map((m) => [m.role, m.content, m.status]),
      [['system', 'Be brief.', undefined], ['user', 'anyone?', undefined], ['assistant', added.text, 'complete']], 'a reply added')
    t.equal(got.messages[2]!.id, added.done.message_id)

    const next = await stream(app, alice.headers, { message: 'thanks', chat_id: chat.id })
    t.equal(next.statusCode, 200)
    const nextReply = assertStreamShape(t, parseSse(next.body), { status: 'complete' })
    t.same((await getChat(app, alice.headers, chat.id)).messages.map((m) => m.content), ['Be brief.', 'anyone?', added.text, 'thanks', nextReply.text],
      'the chat continues in order')
  })

  await t.test('nothing to answer is 409, and the chat is unchanged', async (t) => {
    const cases: Array<[string, Array<{ role: string, content: string }>]> = [
      ['no messages', []],
      ['only a system message', [{ role: 'system', content: 'Be brief.' }]],
      ['a reply with no question', [{ role: 'assistant', content: 'Hello!' }]]
    ]
    for (const [name, initial] of cases) {
      const chat = await createChat(app, alice.headers, { messages: initial })
      const res = await regenerate(app, alice.headers, chat.id)
      assertProblem(t, res, 409, 'There is no message to answer in this chat')
      t.same((await storedMessages(app, chat.id)).map((m) => [m.role, m.content]), initial.map((m) => [m.role, m.content]), `${name}: unchanged`)
    }
  })

  await t.test('another user\'s, unknown and malformed ids are 404', async (t) => {
    const chat = await createChat(app, alice.headers, { messages: [{ role: 'user', content: 'mine' }, { role: 'assistant', content: 'yes' }] })
    for (const [id, headers] of [[chat.id, mallory.headers], [new ObjectId().toHexString(), alice.headers], ['abc', alice.headers]] as const) {
      assertProblem(t, await regenerate(app, headers, id), 404, 'Chat not found')
    }
    t.same((await storedMessages(app, chat.id)).map((m) => m.content), ['mine', 'yes'], 'unchanged')
    t.same(await countOf(app, mallory.user.id), { chats: 0, messages: 0 })
  })

  await t.test('while a reply streams: 409, and the streaming reply goes on', async (t) => {
    const base = await listen(app)
    const { live, start } = await openSlow(t, base, alice.headers)
    assertProblem(t, await regenerate(app, alice.headers, start.chat_id), 409, 'A reply is streaming in this chat; stop it first')
    t.same((await storedMessages(app, start.chat_id)).map((m) => [m.role, m._id.toHexString()]).at(-1), ['assistant', start.message_id],
      'the streaming reply is still there')
    await live.until(hasText(2))
    t.equal((await stop(app, alice.headers, start.chat_id)).statusCode, 202)
    const end = await live.ended
    assertStreamShape(t, end.events, { status: 'interrupted' })
  })
})

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
