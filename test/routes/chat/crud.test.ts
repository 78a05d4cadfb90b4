import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ObjectId } from 'mongodb'
import { build, db, type TestApp } from '../../support/app.js'
import { chats, createChat, getChat, hex24, storedChats, storedMessages, stream, unreachableChats, type Start } from '../../support/chat.js'
import { assertProblem, assertValidation } from '../../support/problems.js'
import { parseSse, replyOf, type Headers } from '../../support/sse.js'
import { signUp } from '../../support/users.js'

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
    t.equal(res.statusCode, 200)
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
    t.equal(res.statusCode, 200)
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

  t.equal((await app.inject({ method: 'POST', url: '/chat/', headers: alice.headers, payload: { title: 'x'.repeat(200) } })).statusCode, 200,
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
