import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ObjectId } from 'mongodb'
import { build, db, listen, type TestApp } from '../support/app.js'
import { createChat, hex24, storedChats, storedMessages, stream, unreachableChats } from '../support/chat.js'
import { assertProblem, assertValidation } from '../support/problems.js'
import { hasText, openSse, parseSse, replyOf, textEvents, type Headers } from '../support/sse.js'
import { until } from '../support/until.js'
import { signUp } from '../support/users.js'

const ChatKeys = ['created_at', 'id', 'messages', 'model', 'system_prompt', 'title', 'updated_at', 'user_id']
const ListItemKeys = ['created_at', 'id', 'last_message', 'model', 'system_prompt', 'title', 'updated_at', 'user_id']
const isoDate = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

async function listChats (app: TestApp, headers: Headers, query = '') {
  return await app.inject({ url: `/chat/${query}`, headers })
}

/** Lets the clock move on, so "most recently updated" is never a tie. */
const tick = () => sleep(5)

t.test('POST /chat/ creates a chat', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)

  await t.test('without a body: untitled and empty', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/chat/', headers: alice.headers, payload: {} })
    t.equal(res.statusCode, 201)
    t.match(res.headers['content-type'], /^application\/json/)
    const chat = res.json()
    t.same(Object.keys(chat).sort(), ChatKeys)
    t.match(chat.id, hex24)
    t.equal(chat.user_id, alice.user.id)
    t.equal(chat.title, null)
    t.same(chat.messages, [])
    t.match(chat.created_at, isoDate)
    t.match(chat.updated_at, isoDate)

    const stored = await db(app).collection('chats').findOne({ _id: new ObjectId(chat.id) })
    t.ok(stored, 'stored')
    t.equal(stored?.user_id.toHexString(), alice.user.id)
  })

  await t.test('with a title and messages, also at /chat without a slash', async (t) => {
    const payload = {
      title: 'Trip planning',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Where should I go?' },
        { role: 'assistant', content: 'Lisbon.' }
      ]
    }
    const res = await app.inject({ method: 'POST', url: '/chat', headers: alice.headers, payload })
    t.equal(res.statusCode, 201)
    const chat = res.json()
    t.same(Object.keys(chat).sort(), ChatKeys)
    t.equal(chat.title, 'Trip planning')
    t.same(chat.messages.map((m: { role: string, content: string }) => ({ role: m.role, content: m.content })), payload.messages)
    for (const m of chat.messages) {
      t.match(m.id, hex24)
      t.match(m.created_at, isoDate)
    }
    t.equal(chat.messages[2].status, 'complete', 'a given assistant message is complete')

    const stored = await storedMessages(app, { chat_id: new ObjectId(chat.id) })
    t.same(stored.map((m) => [m.role, m.content]), payload.messages.map((m) => [m.role, m.content]), 'messages stored in order')

    const got = await app.inject({ url: `/chat/${chat.id}`, headers: alice.headers })
    t.equal(got.statusCode, 200)
    t.same(got.json(), chat, 'GET returns the same chat')
  })
})

t.test('POST /chat/ validation: 422 and nothing stored', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const tooMany = Array.from({ length: 101 }, (_, i) => ({ role: 'user', content: `m${i}` }))

  const cases: Array<[string, unknown, Array<string | number>]> = [
    ['title over 200 characters', { title: 'x'.repeat(201) }, ['body', 'title']],
    ['number as title', { title: 42 }, ['body', 'title']],
    ['operator object as title', { title: { $gt: '' } }, ['body', 'title']],
    ['more than 100 messages', { messages: tooMany }, ['body', 'messages']],
    ['unknown role', { messages: [{ role: 'wizard', content: 'hi' }] }, ['body', 'messages', 0, 'role']],
    ['message content missing', { messages: [{ role: 'user' }] }, ['body', 'messages', 0, 'content']],
    ['operator object as content', { messages: [{ role: 'user', content: { $ne: null } }] }, ['body', 'messages', 0, 'content']],
    ['array body', [], ['body']]
  ]
  for (const [name, payload, loc] of cases) {
    await t.test(name, async (t) => {
      const res = await app.inject({ method: 'POST', url: '/chat/', headers: alice.headers, payload: payload as object })
      assertValidation(t, res, loc)
    })
  }

  t.equal((await app.inject({ method: 'POST', url: '/chat/', headers: alice.headers, payload: { title: 'x'.repeat(200) } })).statusCode, 201,
    'a title of exactly 200 characters is fine')
  t.equal((await storedChats(app, alice.user.id)).length, 1, 'only the valid chat was stored')
  t.equal(await db(app).collection('messages').countDocuments({}), 0, 'no message stored')
})

t.test('chat routes need a token', async (t) => {
  const app = await build(t)
  const requests = [
    { method: 'GET' as const, url: '/chat/' },
    { method: 'POST' as const, url: '/chat/', payload: {} },
    { method: 'GET' as const, url: `/chat/${new ObjectId().toHexString()}` },
    { method: 'POST' as const, url: '/chat/stream', payload: { message: 'hi' } }
  ]
  for (const r of requests) {
    const res = await app.inject(r)
    assertProblem(t, res, 401, 'Not authenticated')
    t.equal(res.headers['www-authenticate'], 'Bearer')
  }
  t.equal(await db(app).collection('chats').countDocuments({}), 0, 'nothing stored')
})

t.test('GET /chat/ lists the caller\'s chats, most recently updated first', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const bob = await signUp(app)

  const first = await createChat(app, alice.headers, { title: 'first', messages: [{ role: 'user', content: 'hello' }, { role: 'assistant', content: 'hi there' }] })
  await tick()
  const second = await createChat(app, alice.headers, { title: 'second' })
  await tick()
  const third = await createChat(app, alice.headers, { title: 'third' })
  await tick()
  await createChat(app, bob.headers, { title: 'bob\'s' })
  await tick()

  let res = await listChats(app, alice.headers)
  t.equal(res.statusCode, 200)
  let list = res.json()
  t.same(list.map((c: { title: string }) => c.title), ['third', 'second', 'first'], 'newest first, only alice\'s')
  for (const item of list) t.same(Object.keys(item).sort(), ListItemKeys, 'list items have no messages, have last_message')
  t.equal(list[1].last_message, null, 'an empty chat has no last message')
  t.same(
    { role: list[2].last_message.role, content: list[2].last_message.content, status: list[2].last_message.status },
    { role: 'assistant', content: 'hi there', status: 'complete' },
    'last_message is the newest message'
  )
  t.equal(list[2].last_message.id, first.messages[1].id)

  // Renaming the oldest makes it the most recently updated.
  const renamed = await app.inject({ method: 'PUT', url: `/chat/${first.id}`, headers: alice.headers, payload: { title: 'first, renamed' } })
  t.equal(renamed.statusCode, 200)
  await tick()
  list = (await listChats(app, alice.headers, '?skip=0&limit=20')).json()
  t.same(list.map((c: { id: string }) => c.id), [first.id, third.id, second.id], 'a rename moves the chat to the top')

  // A streamed message moves a chat to the top too, and becomes its last message.
  const streamed = await stream(app, alice.headers, { message: 'back to you', chat_id: second.id })
  t.equal(streamed.statusCode, 200)
  list = (await listChats(app, alice.headers)).json()
  t.same(list.map((c: { id: string }) => c.id), [second.id, first.id, third.id], 'a streamed reply moves the chat to the top')
  t.equal(list[0].last_message.role, 'assistant')
  t.equal(list[0].last_message.content, replyOf(streamed.body))
  t.equal(list[0].last_message.status, 'complete')

  res = await listChats(app, bob.headers)
  t.same(res.json().map((c: { title: string }) => c.title), ['bob\'s'], 'bob sees only his chat')

  t.equal((await app.inject({ url: '/chat', headers: alice.headers })).json().length, 3, '/chat without a slash works')
})

t.test('GET /chat/ paging: skip and limit', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const titles: string[] = []
  for (let i = 0; i < 23; i++) {
    titles.unshift(`chat ${i}`)
    await createChat(app, alice.headers, { title: `chat ${i}` })
    await tick()
  }
  const page = async (query: string) => {
    const res = await listChats(app, alice.headers, query)
    t.equal(res.statusCode, 200, `200 for "${query}"`)
    return res.json().map((c: { title: string }) => c.title)
  }

  t.same(await page(''), titles.slice(0, 20), 'default limit is 20, from the newest')
  t.same(await page('?skip=20'), titles.slice(20), 'skip=20 gives the rest')
  t.same(await page('?skip=5&limit=3'), titles.slice(5, 8))
  t.same(await page('?limit=1'), titles.slice(0, 1), 'limit=1 is allowed')
  t.same(await page('?limit=100'), titles, 'limit=100 is allowed')
  t.same(await page('?skip=50'), [], 'skip past the end is an empty page')

  const invalid: Array<[string, Array<string | number>]> = [
    ['?limit=0', ['query', 'limit']],
    ['?limit=101', ['query', 'limit']],
    ['?limit=-5', ['query', 'limit']],
    ['?limit=abc', ['query', 'limit']],
    ['?limit=2.5', ['query', 'limit']],
    ['?skip=-1', ['query', 'skip']],
    ['?skip=abc', ['query', 'skip']]
  ]
  for (const [query, loc] of invalid) {
    await t.test(query, async (t) => assertValidation(t, await listChats(app, alice.headers, query), loc))
  }
})

t.test('GET, PUT and DELETE /chat/{id}', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const chat = await createChat(app, alice.headers, { title: 'Mine', messages: [{ role: 'user', content: 'one' }, { role: 'assistant', content: 'two' }] })
  const other = await createChat(app, alice.headers, { title: 'Other', messages: [{ role: 'user', content: 'keep me' }] })

  await t.test('GET returns the chat with its messages in order', async (t) => {
    const res = await app.inject({ url: `/chat/${chat.id}`, headers: alice.headers })
    t.equal(res.statusCode, 200)
    const got = res.json()
    t.same(Object.keys(got).sort(), ChatKeys)
    t.same(got.messages.map((m: { content: string }) => m.content), ['one', 'two'])
    t.equal((await app.inject({ url: `/chat/${chat.id}/`, headers: alice.headers })).statusCode, 200, 'trailing slash works')
  })

  await t.test('PUT renames, and an unchanged title is still 200', async (t) => {
    await tick()
    const res = await app.inject({ method: 'PUT', url: `/chat/${chat.id}`, headers: alice.headers, payload: { title: 'Renamed' } })
    t.equal(res.statusCode, 200)
    const renamed = res.json()
    t.same(Object.keys(renamed).sort(), ChatKeys)
    t.equal(renamed.title, 'Renamed')
    t.equal(renamed.created_at, chat.created_at)
    t.ok(renamed.updated_at > chat.updated_at, 'updated_at moves on')
    t.same(renamed.messages.map((m: { content: string }) => m.content), ['one', 'two'], 'messages come along')
    t.equal((await db(app).collection('chats').findOne({ _id: new ObjectId(chat.id) }))?.title, 'Renamed', 'stored')

    const again = await app.inject({ method: 'PUT', url: `/chat/${chat.id}/`, headers: alice.headers, payload: { title: 'Renamed' } })
    t.equal(again.statusCode, 200, 'unchanged title → 200')
    t.equal(again.json().title, 'Renamed')

    const cleared = await app.inject({ method: 'PUT', url: `/chat/${chat.id}`, headers: alice.headers, payload: { title: null } })
    t.equal(cleared.statusCode, 200, 'a null title is allowed')
    t.equal(cleared.json().title, null)
    await app.inject({ method: 'PUT', url: `/chat/${chat.id}`, headers: alice.headers, payload: { title: 'Renamed' } })
  })

  await t.test('PUT validation: 422 and nothing changed', async (t) => {
    const cases: Array<[string, unknown, Array<string | number>]> = [
      ['operator object', { title: { $gt: '' } }, ['body', 'title']],
      ['number', { title: 7 }, ['body', 'title']],
      ['too long', { title: 'y'.repeat(201) }, ['body', 'title']],
      ['no field at all', {}, ['body']]
    ]
    for (const [name, payload, loc] of cases) {
      const res = await app.inject({ method: 'PUT', url: `/chat/${chat.id}`, headers: alice.headers, payload: payload as object })
      await t.test(name, async (t) => assertValidation(t, res, loc))
    }
    t.equal((await db(app).collection('chats').findOne({ _id: new ObjectId(chat.id) }))?.title, 'Renamed', 'title unchanged')
  })

  await t.test('DELETE removes the chat and its messages, nothing else', async (t) => {
    const res = await app.inject({ method: 'DELETE', url: `/chat/${chat.id}`, headers: alice.headers })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { detail: 'Chat deleted successfully' })
    t.equal(await db(app).collection('chats').countDocuments({ _id: new ObjectId(chat.id) }), 0, 'chat gone')
    t.equal(await db(app).collection('messages').countDocuments({ chat_id: new ObjectId(chat.id) }), 0, 'its messages gone')
    t.equal(await db(app).collection('messages').countDocuments({ chat_id: new ObjectId(other.id) }), 1, 'other chat\'s messages kept')

    const after = await app.inject({ url: `/chat/${chat.id}`, headers: alice.headers })
    assertProblem(t, after, 404, 'Chat not found')
    const twice = await app.inject({ method: 'DELETE', url: `/chat/${chat.id}`, headers: alice.headers })
    assertProblem(t, twice, 404, 'Chat not found')
    t.same((await listChats(app, alice.headers)).json().map((c: { id: string }) => c.id), [other.id])
  })
})

t.test('another user\'s, unknown and malformed chat ids are all "Chat not found", and nothing changes', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const mallory = await signUp(app)
  const chat = await createChat(app, alice.headers, { title: 'Private', messages: [{ role: 'user', content: 'secret' }] })
  const before = await db(app).collection('chats').findOne({ _id: new ObjectId(chat.id) })

  for (const [name, id, headers] of unreachableChats(chat.id, alice.headers, mallory.headers)) {
    await t.test(name, async (t) => {
      const get = await app.inject({ url: `/chat/${id}`, headers })
      assertProblem(t, get, 404, 'Chat not found')
      t.notMatch(get.body, /secret|Private/, 'nothing of the chat leaks')

      const put = await app.inject({ method: 'PUT', url: `/chat/${id}`, headers, payload: { title: 'pwned' } })
      assertProblem(t, put, 404, 'Chat not found')

      const del = await app.inject({ method: 'DELETE', url: `/chat/${id}`, headers })
      assertProblem(t, del, 404, 'Chat not found')
    })
  }

  t.same(await db(app).collection('chats').findOne({ _id: new ObjectId(chat.id) }), before, 'chat unchanged')
  t.equal(await db(app).collection('messages').countDocuments({ chat_id: new ObjectId(chat.id) }), 1, 'messages kept')
  t.equal(await db(app).collection('chats').countDocuments({}), 1, 'no chat created')
  t.same((await listChats(app, mallory.headers)).json(), [], 'mallory has no chats')
})

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
