import { Type, type Static } from 'typebox'
import { DateTimeSchema, IdParamSchema, ref } from './common.js'

export const RoleSchema = Type.Union([Type.Literal('user'), Type.Literal('assistant'), Type.Literal('system')])
export type Role = Static<typeof RoleSchema>

/** `streaming` only while a reply is being written; it ends complete, interrupted or error. */
export const ReplyStatusSchema = Type.Union([Type.Literal('streaming'), Type.Literal('complete'), Type.Literal('interrupted'), Type.Literal('error')])
export type ReplyStatus = Static<typeof ReplyStatusSchema>

export const MAX_MESSAGE_CHARS = 32_000

export const MessageSchema = Type.Object({
  id: Type.String(),
  role: RoleSchema,
  content: Type.String(),
  created_at: DateTimeSchema,
  status: Type.Optional(ReplyStatusSchema)
}, { $id: 'Message', additionalProperties: false })
export type Message = Static<typeof MessageSchema>

const chatFields = {
  id: Type.String(),
  user_id: Type.String(),
  title: Type.Union([Type.String(), Type.Null()]),
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

const TitleSchema = Type.Union([Type.String({ maxLength: 200 }), Type.Null()])

export const NewMessageSchema = Type.Object({
  role: RoleSchema,
  content: Type.String({ maxLength: MAX_MESSAGE_CHARS })
})
export type NewMessage = Static<typeof NewMessageSchema>

export const CreateChatBodySchema = Type.Object({
  title: Type.Optional(TitleSchema),
  messages: Type.Optional(Type.Array(NewMessageSchema, { maxItems: 100 }))
})

export const UpdateChatBodySchema = Type.Object({ title: TitleSchema })

export const ChatParamsSchema = Type.Object({ chat_id: IdParamSchema })

export const ListChatsQuerySchema = Type.Object({
  skip: Type.Integer({ minimum: 0, default: 0 }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 })
})

export const StreamBodySchema = Type.Object({
  message: Type.String({ minLength: 1, maxLength: MAX_MESSAGE_CHARS }),
  chat_id: Type.Optional(Type.Union([IdParamSchema, Type.Null()]))
})
export type StreamBody = Static<typeof StreamBodySchema>
