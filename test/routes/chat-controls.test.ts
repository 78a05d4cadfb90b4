/**
 * The chat controls beyond the original (API contract section 3, "Beyond"), with the built-in demo
 * assistant and its directives: stream events, idempotent sends, stream limits, the time limit,
 * stop, regenerate, message pages, and a chat's system prompt and model.
 */
import t from 'tap'
import type { Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { ObjectId } from 'mongodb'
import { build, db, listen, type TestApp } from '../support/app.js'
import { chats, createChat, getChat, hex24, messages, settledReply, storedMessages, stream, type Start } from '../support/chat.js'
import { assertProblem, assertValidation } from '../support/problems.js'
import { hasText, named, openSse, parseSse, textEvents, textOf, type Headers, type SseEvent } from '../support/sse.js'
import { until } from '../support/until.js'
import { login, signUp } from '../support/users.js'

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
  const beforeFirstWord = live.body.slice(0, live.body.indexOf('data: {"text"'))
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

t.test('GET /chat/{id}/messages pages a chat, newest page first', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const mallory = await signUp(app)
  const seven = Array.from({ length: 7 }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: String(i + 1) }))
  const chat = await createChat(app, alice.headers, { messages: seven })
  const ids = (chat.messages as Array<{ id: string }>).map((m) => m.id)
  const page = async (query: string, headers = alice.headers, chatId = chat.id) =>
    await app.inject({ url: `/chat/${chatId}/messages${query}`, headers })

  await t.test('limit 3: [5,6,7], [2,3,4], [1]', async (t) => {
    const first = await page('?limit=3')
    t.equal(first.statusCode, 200)
    const one = first.json()
    t.same(Object.keys(one).sort(), ['messages', 'next_before'])
    t.same(one.messages, chat.messages.slice(4), 'the newest three, in order, as GET /chat/{id} shows them')
    t.equal(one.next_before, ids[4], 'next_before is the first message of the page')

    const two = (await page(`?before=${one.next_before}&limit=3`)).json()
    t.same(two.messages.map((m: { content: string }) => m.content), ['2', '3', '4'])
    t.equal(two.next_before, ids[1])

    const three = (await page(`?before=${two.next_before}&limit=3`)).json()
    t.same(three.messages.map((m: { content: string }) => m.content), ['1'])
    t.equal(three.next_before, null, 'null on the first page of the chat')
  })

  await t.test('page boundaries and the whole chat', async (t) => {
    t.same((await page('?limit=7')).json(), { messages: chat.messages, next_before: null }, 'exactly the whole chat: no next page')
    const six = (await page('?limit=6')).json()
    t.same([six.messages.length, six.next_before], [6, ids[1]])
    t.same((await page(`?before=${ids[1]}&limit=6`)).json(), { messages: chat.messages.slice(0, 1), next_before: null })
    t.same((await page(`?before=${ids[0]}`)).json(), { messages: [], next_before: null }, 'nothing before the first message')
    t.same((await page('')).json(), { messages: chat.messages, next_before: null }, 'no query: the whole short chat')
    const empty = await createChat(app, alice.headers)
    t.same((await page('', alice.headers, empty.id)).json(), { messages: [], next_before: null }, 'an empty chat')
  })

  await t.test('the default limit is 50', async (t) => {
    const long = await createChat(app, alice.headers, { messages: Array.from({ length: 55 }, (_, i) => ({ role: 'user', content: `m${i + 1}` })) })
    const res = (await page('', alice.headers, long.id)).json()
    t.equal(res.messages.length, 50)
    t.equal(res.messages[0].content, 'm6')
    t.equal(res.messages.at(-1).content, 'm55')
    t.equal(res.next_before, long.messages[5].id)
    const rest = (await page(`?before=${res.next_before}`, alice.headers, long.id)).json()
    t.same(rest.messages.map((m: { content: string }) => m.content), ['m1', 'm2', 'm3', 'm4', 'm5'])
    t.equal(rest.next_before, null)
  })

  await t.test('bad before, bad limit, and chats that are not the caller\'s', async (t) => {
    assertProblem(t, await page(`?before=${new ObjectId().toHexString()}`), 404, 'Message not found')
    const elsewhere = await createChat(app, alice.headers, { messages: [{ role: 'user', content: 'other chat' }] })
    assertProblem(t, await page(`?before=${elsewhere.messages[0].id}`), 404, 'Message not found')
    assertValidation(t, await page('?before=abc'), ['query', 'before'])
    assertValidation(t, await page('?limit=0'), ['query', 'limit'])
    assertValidation(t, await page('?limit=101'), ['query', 'limit'])
    t.equal((await page('?limit=100')).statusCode, 200, 'limit 100 is allowed')
    for (const [chatId, headers] of [[chat.id, mallory.headers], [new ObjectId().toHexString(), alice.headers], ['abc', alice.headers]] as const) {
      const res = await page('?limit=3', headers, chatId)
      assertProblem(t, res, 404, 'Chat not found')
      t.notMatch(res.body, /"content"/, 'no message leaks')
    }
  })
})

t.test('system_prompt and model on a chat', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const storedChat = async (id: string) => await chats(app).findOne({ _id: new ObjectId(id) })
  const listItem = async (id: string) => (await app.inject({ url: '/chat/', headers: alice.headers })).json().find((c: { id: string }) => c.id === id)

  await t.test('set on create, shown in the chat and the list; null when unset', async (t) => {
    const chat = await createChat(app, alice.headers, { title: 'Tuned', system_prompt: 'Answer in French.', model: 'gpt-test' })
    t.same([chat.title, chat.system_prompt, chat.model], ['Tuned', 'Answer in French.', 'gpt-test'])
    const got = await getChat(app, alice.headers, chat.id)
    t.same([got.system_prompt, got.model], ['Answer in French.', 'gpt-test'], 'GET shows them')
    const item = await listItem(chat.id)
    t.same([item.system_prompt, item.model], ['Answer in French.', 'gpt-test'], 'the list shows them')
    const stored = await storedChat(chat.id)
    t.same([stored?.system_prompt, stored?.model], ['Answer in French.', 'gpt-test'], 'stored')

    const plain = await createChat(app, alice.headers, { title: 'Plain' })
    t.same([plain.system_prompt, plain.model], [null, null])
    const plainItem = await listItem(plain.id)
    t.same([plainItem.system_prompt, plainItem.model], [null, null])
    const streamed = await stream(app, alice.headers, { message: 'a streamed chat' })
    const streamedId = (parseSse(streamed.body)[0]!.data as Start).chat_id
    const streamedChat = await getChat(app, alice.headers, streamedId)
    t.same([streamedChat.system_prompt, streamedChat.model], [null, null], 'a chat started by streaming has neither')
  })

  await t.test('PUT sets one field and keeps the others; null clears', async (t) => {
    const chat = await createChat(app, alice.headers, { title: 'Keep me', model: 'gpt-test' })
    let res = await app.inject({ method: 'PUT', url: `/chat/${chat.id}`, headers: alice.headers, payload: { system_prompt: 'Be brief.' } })
    t.equal(res.statusCode, 200)
    t.same([res.json().title, res.json().system_prompt, res.json().model], ['Keep me', 'Be brief.', 'gpt-test'], 'title and model kept')
    t.same([(await storedChat(chat.id))?.title, (await storedChat(chat.id))?.system_prompt], ['Keep me', 'Be brief.'], 'stored')

    res = await app.inject({ method: 'PUT', url: `/chat/${chat.id}`, headers: alice.headers, payload: { model: 'other-model' } })
    t.same([res.json().title, res.json().system_prompt, res.json().model], ['Keep me', 'Be brief.', 'other-model'])

    res = await app.inject({ method: 'PUT', url: `/chat/${chat.id}`, headers: alice.headers, payload: { system_prompt: null, model: null } })
    t.equal(res.statusCode, 200)
    t.same([res.json().title, res.json().system_prompt, res.json().model], ['Keep me', null, null], 'null clears')
    const item = await listItem(chat.id)
    t.same([item.title, item.system_prompt, item.model], ['Keep me', null, null], 'the list agrees')

    const longest = await app.inject({ method: 'PUT', url: `/chat/${chat.id}`, headers: alice.headers, payload: { system_prompt: 'p'.repeat(8000), model: 'm'.repeat(200) } })
    t.equal(longest.statusCode, 200, '8000 and 200 characters are fine')
  })

  await t.test('too long or empty: 422 and nothing changed', async (t) => {
    const chat = await createChat(app, alice.headers, { title: 'Fixed', system_prompt: 'Stay.', model: 'gpt-test' })
    const before = await storedChat(chat.id)
    const cases: Array<[string, Record<string, unknown>, Array<string | number>]> = [
      ['system prompt over 8000', { system_prompt: 'p'.repeat(8001) }, ['body', 'system_prompt']],
      ['empty model', { model: '' }, ['body', 'model']],
      ['model over 200', { model: 'm'.repeat(201) }, ['body', 'model']],
      ['a number as system prompt', { system_prompt: 5 }, ['body', 'system_prompt']],
      ['a valid title with a bad model', { title: 'Changed', model: '' }, ['body', 'model']],
      ['no field at all', {}, ['body']]
    ]
    for (const [name, payload, loc] of cases) {
      await t.test(name, async (t) => {
        assertValidation(t, await app.inject({ method: 'PUT', url: `/chat/${chat.id}`, headers: alice.headers, payload }), loc)
      })
    }
    t.same(await storedChat(chat.id), before, 'the chat is unchanged')

    const count = await chats(app).countDocuments({ user_id: new ObjectId(alice.user.id) })
    assertValidation(t, await app.inject({ method: 'POST', url: '/chat/', headers: alice.headers, payload: { system_prompt: 'p'.repeat(8001) } }), ['body', 'system_prompt'])
    assertValidation(t, await app.inject({ method: 'POST', url: '/chat/', headers: alice.headers, payload: { model: '' } }), ['body', 'model'])
    t.equal(await chats(app).countDocuments({ user_id: new ObjectId(alice.user.id) }), count, 'no chat created')
  })
})

t.test('PUT /chat/{id} sets only the chat settings: other fields in the body are ignored, never stored', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const bob = await signUp(app)
  const chat = await createChat(app, alice.headers, { title: 'mine', messages: [{ role: 'user', content: 'hello' }] })
  const before = await chats(app).findOne({ _id: new ObjectId(chat.id) })

  const res = await app.inject({
    method: 'PUT',
    url: `/chat/${chat.id}`,
    headers: alice.headers,
    payload: { title: 'renamed', user_id: bob.user.id, message_count: 0, last_message: null, _id: 'x', created_at: '2000-01-01', extra: { $where: '1' } }
  })
  t.equal(res.statusCode, 200)
  t.equal(res.json().title, 'renamed')
  t.equal(res.json().user_id, alice.user.id, 'still alice\'s')
  const after = await chats(app).findOne({ _id: new ObjectId(chat.id) })
  t.equal(after?.user_id.toHexString(), alice.user.id, 'owner unchanged')
  t.equal(after?.message_count, before?.message_count, 'message count unchanged')
  t.same(after?.last_message, before?.last_message, 'last message unchanged')
  t.same(after?.created_at, before?.created_at, 'created_at unchanged')
  t.notOk(after && 'extra' in after, 'no unknown field stored')
  t.equal((await app.inject({ url: `/chat/${chat.id}`, headers: bob.headers })).statusCode, 404, 'bob still cannot see it')
})
