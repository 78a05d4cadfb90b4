/** Chats: requests to the chat routes, and what is stored of chats and their messages. */
import { ObjectId, type Document, type Filter } from 'mongodb'
import { db, type TestApp } from './app.js'
import type { Headers } from './sse.js'
import { until } from './until.js'

export const hex24 = /^[0-9a-f]{24}$/

export interface Start { chat_id: string, message_id: string }

export async function createChat (app: TestApp, headers: Headers, payload: Record<string, unknown> = {}) {
  const res = await app.inject({ method: 'POST', url: '/chat/', headers, payload })
  if (res.statusCode !== 200) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

export async function getChat (app: TestApp, headers: Headers, chatId: string) {
  const res = await app.inject({ url: `/chat/${chatId}`, headers })
  if (res.statusCode !== 200) throw new Error(`get failed: ${res.statusCode} ${res.body}`)
  return res.json() as { messages: Array<{ id: string, role: string, content: string, status?: string }> } & Record<string, unknown>
}

/** POST /chat/stream through inject: the whole stream, once it has ended. */
export async function stream (app: TestApp, headers: Headers, payload: Record<string, unknown>) {
  return await app.inject({ method: 'POST', url: '/chat/stream', headers, payload })
}

export const chats = (app: TestApp) => db(app).collection('chats')
export const messages = (app: TestApp) => db(app).collection('messages')

export async function storedChats (app: TestApp, userId: string) {
  return await chats(app).find({ user_id: new ObjectId(userId) }).toArray()
}

/** The stored messages of a chat (by id) or matching a filter, in their order. */
export async function storedMessages (app: TestApp, chat: string | Filter<Document>) {
  const filter = typeof chat === 'string' ? { chat_id: new ObjectId(chat) } : chat
  return await messages(app).find(filter).sort({ seq: 1 }).toArray()
}

/** The stored reply once it is no longer `streaming` (bounded wait). */
export async function settledReply (app: TestApp, replyId: string) {
  return await until(() => messages(app).findOne({ _id: new ObjectId(replyId), status: { $ne: 'streaming' } }), 5000, `reply ${replyId} to end`)
}

/** Chat ids the caller cannot reach, each with the headers to try it with: `chatId` by a stranger, an unknown and two malformed ids by its owner. */
export function unreachableChats (chatId: string, owner: Headers, stranger: Headers): Array<[string, string, Headers]> {
  return [
    ['another user\'s chat', chatId, stranger],
    ['unknown id', new ObjectId().toHexString(), owner],
    ['malformed id "abc"', 'abc', owner],
    ['malformed 24-character id', 'zzzzzzzzzzzzzzzzzzzzzzzz', owner]
  ]
}
