/**
 * A user's whole journey through the TypeScript client generated from the live document
 * (openapi-typescript types + openapi-fetch). Nothing here builds a request by hand: every call
 * is the generated client's, typed by the generated `paths`; only the event stream is read here.
 * typescript.clients.ts type-checks this file against the types it just generated.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream'
import createClient from 'openapi-fetch'
import type { Test } from 'tap'
import type { components, paths } from '../../.clients/typescript/schema.js'

type Schemas = components['schemas']
type StreamEvent = Schemas['StreamEvent']

export interface FlowContext {
  url: string
  mailToken (email: string, subject: string): Promise<string>
}

const eventNames = new Set<string>(['start', 'message', 'error', 'done'])

/** The stream's events as the document names them; an SSE event without an `event:` line is a `message`. */
async function readEvents (body: ReadableStream<Uint8Array>): Promise<StreamEvent[]> {
  const events: StreamEvent[] = []
  const parsed = body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream())
  for await (const { event = 'message', data, id } of parsed) {
    if (!eventNames.has(event)) throw new Error(`undocumented event ${event}`)
    events.push({ event, data, ...(id !== undefined && { id }) } as StreamEvent)
  }
  return events
}

function dataOf<E extends StreamEvent['event']> (events: StreamEvent[], name: E) {
  return events.filter((e) => e.event === name).map((e) => JSON.parse(e.data)) as Array<
    E extends 'start' ? Schemas['StartEventData'] : E extends 'message' ? Schemas['TextEventData'] :
      E extends 'done' ? Schemas['DoneEventData'] : Schemas['ErrorEventData']>
}

function isIsoDate (value: unknown) {
  return typeof value === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(value)
}

export async function runFlow (t: Test, { url, mailToken }: FlowContext) {
  const anonymous = createClient<paths>({ baseUrl: url })
  const signedIn = (token: string) => createClient<paths>({ baseUrl: url, headers: { Authorization: `Bearer ${token}` } })
  const email = `typescript-${process.pid}-${Date.now()}@example.com`
  const password = 'correct horse battery staple'
  const form = { 'Content-Type': 'application/x-www-form-urlencoded' } as const

  // Register, and see a validation error as FastAPI clients parse it.
  const registered = await anonymous.POST('/auth/register', { body: { email, password } })
  t.equal(registered.response.status, 200, 'register answers 200')
  t.match(registered.data, { email, is_verified: false }, 'register returns the new user')
  const refused = await anonymous.POST('/auth/register', { body: { email: 'someone@example.com', password: 'short' } })
  t.equal(refused.response.status, 422, 'a too short password is a 422')
  const issues = refused.error?.detail
  t.ok(Array.isArray(issues) && issues[0]?.msg && issues[0].loc.includes('password'), '422 detail is the FastAPI list [{ loc, msg, type }]')

  // Verify the address with the mailed token.
  const verified = await anonymous.POST('/auth/verify', { body: { token: await mailToken(email, 'Verify your email address') } })
  t.equal(verified.response.status, 200, 'verify answers 200')

  // Log in with the OAuth2 form.
  const login = await anonymous.POST('/auth/login', { body: { username: email, password }, headers: form })
  t.equal(login.response.status, 200, 'login by form answers 200')
  t.equal(login.response.headers.get('cache-control'), 'no-store', 'tokens are not cached')
  const tokens = login.data!
  t.equal(tokens.token_type, 'bearer')
  t.ok(tokens.expires_in > 0, 'login says how long the token lives (expires_in)')
  t.ok(isIsoDate(tokens.expires_at) && Date.parse(tokens.expires_at) > Date.now(), 'login says when the token expires (expires_at)')
  let client = signedIn(tokens.access_token)

  const me = await client.GET('/users/me')
  t.equal(me.response.status, 200, 'me answers 200')
  t.match(me.data, { email, is_verified: true }, 'me is the verified user')

  // The original's query-only form: no body at all.
  const resend = await anonymous.POST('/auth/resend-verification', { params: { query: { email } } })
  t.equal(resend.response.status, 200, 'resend-verification takes the address as a query parameter alone')

  // Chats.
  const created = await client.POST('/chat/', { body: { title: 'From TypeScript' } })
  t.equal(created.response.status, 200, 'creating a chat answers 200')
  const chatId = created.data!.id
  t.match(created.data, { title: 'From TypeScript', messages: [] }, 'the new chat')
  const list = await client.GET('/chat/')
  t.equal(list.response.status, 200, 'the chat list needs no skip or limit')
  t.ok(list.data?.some((chat) => chat.id === chatId), 'the list has the chat')
  const renamed = await client.PUT('/chat/{chat_id}', { params: { path: { chat_id: chatId } }, body: { title: 'Renamed' } })
  t.equal(renamed.data?.title, 'Renamed', 'a chat can be renamed')

  // A reply, read as events.
  const streamed = await client.POST('/chat/stream', { body: { message: 'Hello from TypeScript', chat_id: chatId }, parseAs: 'stream' })
  t.equal(streamed.response.status, 200, 'the stream answers 200')
  t.match(streamed.response.headers.get('content-type'), /^text\/event-stream/, 'as server-sent events')
  const events = await readEvents(streamed.response.body!)
  t.same(events.map((e) => e.event).filter((name, i, all) => name !== all[i - 1]), ['start', 'message', 'done'], 'start, text events, done')
  const [start] = dataOf(events, 'start')
  const [done] = dataOf(events, 'done')
  const reply = dataOf(events, 'message').map((piece) => piece.text).join('')
  t.equal(start?.chat_id, chatId, 'start names the chat')
  t.match(done, { chat_id: chatId, message_id: start?.message_id, status: 'complete' }, 'done says the reply is complete')
  t.ok(reply.length > 0, 'the text events make a reply')

  const chat = await client.GET('/chat/{chat_id}', { params: { path: { chat_id: chatId } } })
  t.match(chat.data?.messages.map((m) => [m.role, m.content]), [['user', 'Hello from TypeScript'], ['assistant', reply]], 'the chat stored both messages')
  const page = await client.GET('/chat/{chat_id}/messages', { params: { path: { chat_id: chatId } } })
  t.equal(page.data?.messages.length, 2, 'the message page needs no limit')
  t.equal(page.data?.messages[1]?.id, done?.message_id, 'the reply has the id the stream gave')

  // New tokens for the refresh token.
  const refreshed = await anonymous.POST('/auth/refresh', { body: { refresh_token: tokens.refresh_token } })
  t.equal(refreshed.response.status, 200, 'refresh answers 200')
  t.ok(isIsoDate(refreshed.data?.expires_at), 'refresh says when the new token expires (expires_at)')
  client = signedIn(refreshed.data!.access_token)
  t.equal((await client.GET('/users/me')).response.status, 200, 'the refreshed token works')

  // A forgotten password, reset through the original's query-only forms.
  const forgot = await anonymous.POST('/auth/forgot-password', { params: { query: { email } } })
  t.equal(forgot.response.status, 200, 'forgot-password takes the address as a query parameter alone')
  const newPassword = 'another correct horse battery'
  const reset = await anonymous.POST('/auth/reset-password/{token}', {
    params: { path: { token: await mailToken(email, 'Password Reset Request') }, query: { new_password: newPassword } }
  })
  t.equal(reset.response.status, 200, 'reset-password takes the new password as a query parameter alone')
  t.equal((await client.GET('/users/me')).response.status, 401, 'a reset signs every session out')
  const again = await anonymous.POST('/auth/login', { body: { username: email, password: newPassword }, headers: form })
  t.equal(again.response.status, 200, 'the new password logs in')
  client = signedIn(again.data!.access_token)

  const deleted = await client.DELETE('/chat/{chat_id}', { params: { path: { chat_id: chatId } } })
  t.equal(deleted.data?.detail, 'Chat deleted successfully', 'a chat can be deleted')
  t.equal((await client.GET('/chat/{chat_id}', { params: { path: { chat_id: chatId } } })).response.status, 404, 'and is gone')

  const logout = await client.POST('/auth/logout')
  t.equal(logout.response.status, 204, 'logout answers 204')
  const after = await client.GET('/users/me')
  t.equal(after.response.status, 401, 'the token works no more after logout')
  t.match(after.response.headers.get('www-authenticate'), /^Bearer/, 'with a WWW-Authenticate challenge')
}
