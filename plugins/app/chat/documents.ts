import { ObjectId, type Collection } from 'mongodb'
import { findOwned } from '../../../lib/by-id.js'
import { parseObjectId } from '../../../lib/object-id.js'
import type { Message, ReplyStatus, Role, Usage } from '../../../schemas/chat.js'

/** A message as stored: in its own collection, so a long chat never meets the 16 MB document limit. */
export interface MessageDocument {
  _id: ObjectId
  chat_id: ObjectId
  user_id: ObjectId
  /** Position in the chat: the order of the conversation (unique per chat; gaps are allowed). */
  seq: number
  role: Role
  content: string
  status?: ReplyStatus
  /** The sender's id for the message, which makes a retried send idempotent. */
  client_message_id?: string
  /** Streaming replies: the instance writing it (its heartbeat shows the reply is alive)... */
  instance?: string
  /** ...and how many pieces `content` holds, so an older checkpoint never overwrites a newer one. */
  pieces?: number
  /** Replies: what the provider counted, and why it failed. */
  usage?: Usage
  error?: string
  created_at: Date
  updated_at: Date
}

export type MessageCopy = Pick<MessageDocument, '_id' | 'role' | 'content' | 'status' | 'created_at'>

export interface ChatDocument {
  _id: ObjectId
  user_id: ObjectId
  title: string | null
  /** Absent on chats stored before these settings existed: read as null. */
  system_prompt?: string | null
  model?: string | null
  created_at: Date
  updated_at: Date
  /** The highest message position used so far. */
  message_count: number
  /** A copy of the newest message, so the chat list needs no second query. */
  last_message: MessageCopy | null
}

export function newMessage (chatId: ObjectId, userId: ObjectId, seq: number, role: Role, content: string, now: Date, status?: ReplyStatus): MessageDocument {
  const doc: MessageDocument = { _id: new ObjectId(), chat_id: chatId, user_id: userId, seq, role, content, created_at: now, updated_at: now }
  if (status !== undefined) doc.status = status
  else if (role === 'assistant') doc.status = 'complete'
  return doc
}

export function copyOf (doc: MessageCopy): MessageCopy {
  const copy: MessageCopy = { _id: doc._id, role: doc.role, content: doc.content, created_at: doc.created_at }
  if (doc.status !== undefined) copy.status = doc.status
  return copy
}

export function toMessage (doc: MessageCopy & { usage?: Usage }): Message {
  const message: Message = { id: doc._id.toHexString(), role: doc.role, content: doc.content, created_at: doc.created_at.toISOString() }
  if (doc.status !== undefined) message.status = doc.status
  if (doc.usage !== undefined) message.usage = doc.usage
  return message
}

export const messageProjection = { role: 1, content: 1, status: 1, usage: 1, created_at: 1 } as const

/** The caller's chat, or null: another user's chat, an unknown and a malformed id are all "not found". */
export async function findOwnChat (chats: Collection<ChatDocument>, userId: string, chatId: string) {
  const _id = parseObjectId(chatId)
  return _id ? await findOwned(chats, _id, new ObjectId(userId), { _id: 1, system_prompt: 1, model: 1 }) : null
}
