import { Type, type Static } from 'typebox'
import { DateTimeSchema, IdParamSchema, ref } from './common.js'

export const RoleSchema = Type.Union([Type.Literal('user'), Type.Literal('assistant'), Type.Literal('system')])
export type Role = Static<typeof RoleSchema>

/** `streaming` only while a reply is being written; it ends complete, interrupted or error. */
export const ReplyStatusSchema = Type.Union([Type.Literal('streaming'), Type.Literal('complete'), Type.Literal('interrupted'), Type.Literal('error')])
export type ReplyStatus = Static<typeof ReplyStatusSchema>

export const MAX_MESSAGE_CHARS = 32_000

export const UsageSchema = Type.Object({
  prompt_tokens: Type.Integer(),
  completion_tokens: Type.Integer(),
  total_tokens: Type.Integer()
}, { $id: 'Usage', additionalProperties: false, description: 'Tokens counted by the provider for a reply' })
export type Usage = Static<typeof UsageSchema>

export const MessageSchema = Type.Object({
  id: Type.String(),
  role: RoleSchema,
  content: Type.String(),
  created_at: DateTimeSchema,
  status: Type.Optional(ReplyStatusSchema),
  usage: Type.Optional(ref(UsageSchema))
}, { $id: 'Message', additionalProperties: false })
export type Message = Static<typeof MessageSchema>

const chatFields = {
  id: Type.String(),
  user_id: Type.String(),
  title: Type.Union([Type.String(), Type.Null()]),
  system_prompt: Type.Union([Type.String(), Type.Null()]),
  model: Type.Union([Type.String(), Type.Null()]),
  created_at: DateTimeSchema,
  updated_at: DateTimeSchema
}

export const ChatSchema = Type.Object({
  ...chatFields,
  messages: Type.Array(ref(MessageSchema))
}, { $id: 'Chat', additionalProperties: false })
export type Chat = Static<typeof ChatSchema>

export const ChatListItemSchema = Type.Object({
  ...chatFields,
  last_message: Type.Union([ref(MessageSchema), Type.Null()])
}, { $id: 'ChatListItem', additionalProperties: false })
export type ChatListItem = Static<typeof ChatListItemSchema>

export const MessagePageSchema = Type.Object({
  messages: Type.Array(ref(MessageSchema)),
  next_before: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `before` for the page before this one; null on the first page of the chat' })
}, { $id: 'MessagePage', additionalProperties: false })
export type MessagePage = Static<typeof MessagePageSchema>

const TitleSchema = Type.Union([Type.String({ maxLength: 200 }), Type.Null()])
const settingsFields = {
  title: Type.Optional(TitleSchema),
  system_prompt: Type.Optional(Type.Union([Type.String({ maxLength: 8000 }), Type.Null()], { description: 'Sent first to the assistant' })),
  model: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()], { description: 'The model to ask; null for the service\'s default' }))
}
export type ChatSettings = Static<typeof UpdateChatBodySchema>

export const NewMessageSchema = Type.Object({
  role: RoleSchema,
  content: Type.String({ maxLength: MAX_MESSAGE_CHARS })
}, { additionalProperties: false })
export type NewMessage = Static<typeof NewMessageSchema>

export const CreateChatBodySchema = Type.Object({
  ...settingsFields,
  messages: Type.Optional(Type.Array(NewMessageSchema, { maxItems: 100 }))
}, { additionalProperties: false })

export const UpdateChatBodySchema = Type.Object(settingsFields, { additionalProperties: false, minProperties: 1 })

export const ChatParamsSchema = Type.Object({ chat_id: IdParamSchema }, { additionalProperties: false })

export const ListChatsQuerySchema = Type.Object({
  skip: Type.Integer({ minimum: 0, default: 0 }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 })
}, { additionalProperties: false })

export const StreamBodySchema = Type.Object({
  message: Type.String({ minLength: 1, maxLength: MAX_MESSAGE_CHARS }),
  chat_id: Type.Optional(Type.Union([IdParamSchema, Type.Null()])),
  client_message_id: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 64,
    description: 'Makes the send idempotent: a retry with an id already used in the chat (or, without `chat_id`, for a new chat) replays the stored reply'
  }))
}, { additionalProperties: false })

export const MessagesQuerySchema = Type.Object({
  before: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{24}$', description: 'A message id: the page ends just before it' })),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 })
}, { additionalProperties: false })
export type StreamBody = Static<typeof StreamBodySchema>
