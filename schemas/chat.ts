import { Type, type Static, type TSchema } from 'typebox'
import { DateTimeSchema, IdParamSchema, ref, StoredText } from './common.js'

/** Plain string enums (one `enum`, not a union of one-value schemas): what client generators turn into enums. */
const StringEnum = <const T extends readonly string[]> (values: T, description?: string) => Type.Enum([...values], { type: 'string', description })

export const RoleSchema = StringEnum(['user', 'assistant', 'system'])
export type Role = Static<typeof RoleSchema>

/** `streaming` only while a reply is being written; it ends complete, interrupted or error. */
export const ReplyStatusSchema = StringEnum(['streaming', 'complete', 'interrupted', 'error'])
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

const TitleSchema = Type.Union([StoredText({ maxLength: 200 }), Type.Null()])
const settingsFields = {
  title: Type.Optional(TitleSchema),
  system_prompt: Type.Optional(Type.Union([StoredText({ maxLength: 8000 }), Type.Null()], { description: 'Sent first to the assistant' })),
  model: Type.Optional(Type.Union([StoredText({ minLength: 1, maxLength: 200 }), Type.Null()], { description: 'The model to ask; null for the service\'s default' }))
}
export type ChatSettings = Static<typeof UpdateChatBodySchema>

export const NewMessageSchema = Type.Object({
  role: RoleSchema,
  content: StoredText({ maxLength: MAX_MESSAGE_CHARS })
}, { additionalProperties: false })
export type NewMessage = Static<typeof NewMessageSchema>

export const CreateChatBodySchema = Type.Object({
  ...settingsFields,
  messages: Type.Optional(Type.Array(NewMessageSchema, { maxItems: 100 }))
}, { additionalProperties: false })

export const UpdateChatBodySchema = Type.Object(settingsFields, { additionalProperties: false, minProperties: 1 })

export const ChatParamsSchema = Type.Object({ chat_id: IdParamSchema }, { additionalProperties: false })

/** Far past any real offset, and within what the database takes (Infinity or 1e20 it refuses). */
const MAX_SKIP = 2_147_483_647

export const ListChatsQuerySchema = Type.Object({
  skip: Type.Integer({ minimum: 0, maximum: MAX_SKIP, default: 0 }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 })
}, { additionalProperties: false })

export const StreamBodySchema = Type.Object({
  message: StoredText({ minLength: 1, maxLength: MAX_MESSAGE_CHARS }),
  chat_id: Type.Optional(Type.Union([IdParamSchema, Type.Null()])),
  client_message_id: Type.Optional(StoredText({
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

export const ResumeQuerySchema = Type.Object({
  message_id: { ...IdParamSchema, description: 'The reply to stream: `message_id` of its `start` event' }
}, { additionalProperties: false })

/** What EventSource sends by itself when it reconnects: the id of the last event it received. */
export const ResumeHeadersSchema = Type.Object({
  'last-event-id': Type.Optional(Type.String({
    pattern: '^(0|[1-9][0-9]{0,9})$',
    description: 'The `id` of the last text event received (the reply\'s length so far): the stream resumes after it'
  }))
})

// The events of POST /chat/stream and /chat/{chat_id}/regenerate. The stream writes them itself
// (plugins/app/chat/streaming), so these schemas only document them: each event as an SSE parser
// reads it, `{ event, data }`, with `data` a JSON text whose shape `contentSchema` names.

export const StartEventDataSchema = Type.Object({
  chat_id: Type.String(),
  message_id: Type.String({ description: 'the id the reply will have' })
}, { $id: 'StartEventData', additionalProperties: false })

export const TextEventDataSchema = Type.Object({
  text: Type.String({ description: 'the next piece of the reply' }),
  chat_id: Type.String()
}, { $id: 'TextEventData', additionalProperties: false })

export const ErrorEventDataSchema = Type.Object({
  detail: Type.String({ description: 'why the reply failed or ended early' })
}, { $id: 'ErrorEventData', additionalProperties: false })

export const DoneEventDataSchema = Type.Object({
  chat_id: Type.String(),
  message_id: Type.String(),
  status: StringEnum(['complete', 'interrupted', 'error'], 'how the reply ended; it is stored so')
}, { $id: 'DoneEventData', additionalProperties: false })

function sseEvent<const N extends string> ($id: string, event: N, data: TSchema & { $id?: string }, description: string) {
  return Type.Object({
    event: Type.Literal(event),
    id: Type.Optional(Type.String()),
    data: Type.String({ contentMediaType: 'application/json', contentSchema: ref(data) })
  }, { $id, additionalProperties: false, description })
}

export const StartEventSchema = sseEvent('StartEvent', 'start', StartEventDataSchema, 'First: the chat and the id of the reply')
export const TextEventSchema = sseEvent('TextEvent', 'message', TextEventDataSchema,
  'A piece of the reply, in an event without an `event:` line (SSE parsers name it `message`); the texts concatenated are the reply. ' +
  'Its `id` is the length of the reply so far (UTF-16 code units): sent back as `Last-Event-ID`, the stream resumes after it')
export const ErrorEventSchema = sseEvent('ErrorEvent', 'error', ErrorEventDataSchema, 'The reply failed or the server ended it; `done` follows')
export const DoneEventSchema = sseEvent('DoneEvent', 'done', DoneEventDataSchema, 'Always last, once the reply is stored')

const streamEvents = { start: 'StartEvent', message: 'TextEvent', error: 'ErrorEvent', done: 'DoneEvent' }

export const StreamEventSchema = Type.Unsafe<Static<typeof StartEventSchema | typeof TextEventSchema | typeof ErrorEventSchema | typeof DoneEventSchema>>({
  $id: 'StreamEvent',
  description: 'One event of the stream. A `: ping` comment comes after STREAM_PING_SECONDS (15) without an event.',
  oneOf: Object.values(streamEvents).map(($id) => ({ $ref: $id })),
  discriminator: {
    propertyName: 'event',
    mapping: Object.fromEntries(Object.entries(streamEvents).map(([event, $id]) => [event, `#/components/schemas/${$id}`]))
  }
})

/** Named in the document, referenced by the stream routes' responses. */
export const streamEventSchemas = [
  StartEventDataSchema, TextEventDataSchema, ErrorEventDataSchema, DoneEventDataSchema,
  StartEventSchema, TextEventSchema, ErrorEventSchema, DoneEventSchema, StreamEventSchema
]
