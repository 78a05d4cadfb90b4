import { Type, type Static } from 'typebox'
import { DateTimeSchema, IdParamSchema, ref } from './common.js'

/** Everything a client ever learns about a user. */
export const UserSchema = Type.Object({
  id: Type.String(),
  email: Type.String(),
  is_verified: Type.Boolean(),
  created_at: DateTimeSchema
}, { $id: 'User', additionalProperties: false })
export type User = Static<typeof UserSchema>

export const SessionSchema = Type.Object({
  id: Type.String(),
  created_at: DateTimeSchema,
  last_used_at: DateTimeSchema,
  user_agent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  current: Type.Boolean({ description: 'the session of the token making this request' })
}, { additionalProperties: false })
export type Session = Static<typeof SessionSchema>

export const SessionParamsSchema = Type.Object({ session_id: IdParamSchema }, { additionalProperties: false })

export const SECURITY_EVENT_KINDS = [
  'signed_in', 'sign_in_failed', 'locked_out', 'refresh_token_reused', 'password_changed', 'password_reset_requested',
  'password_reset_completed', 'email_verified', 'session_ended', 'not_me_reported'
] as const
export type SecurityEventKind = typeof SECURITY_EVENT_KINDS[number]

/** Why sessions ended, as a `session_ended` event says (a `refresh_token_reused` event is itself the end of its session). */
export const SESSION_END_REASONS = [
  'signed_out', 'signed_out_everywhere', 'revoked', 'password_changed', 'password_reset_completed', 'not_me'
] as const
export type SessionEndReason = typeof SESSION_END_REASONS[number]

/** One entry of the security timeline: its kind, its time, and only the fields that kind has. Never a secret. */
export const SecurityEventSchema = Type.Object({
  id: Type.String(),
  kind: Type.Enum(SECURITY_EVENT_KINDS),
  at: Type.String({ format: 'date-time', description: 'when it happened; for grouped events (sign_in_failed, locked_out) the first occurrence' }),
  last_at: Type.Optional(Type.String({ format: 'date-time', description: 'grouped events: the latest occurrence' })),
  ip: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  user_agent: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  session_id: Type.Optional(Type.String({ description: 'the session it concerns (signed_in; refresh_token_reused: the session ended for it; a single session_ended; not_me_reported: the session kept)' })),
  count: Type.Optional(Type.Integer({ description: 'grouped events: how many times in the window; session_ended: how many sessions ended' })),
  reason: Type.Optional(Type.String({ description: 'session_ended: ' + SESSION_END_REASONS.join(', ') + '; locked_out: address_and_ip or address' })),
  event_id: Type.Optional(Type.String({ description: 'not_me_reported: the event reported' }))
}, { $id: 'SecurityEvent', additionalProperties: false })
export type SecurityEvent = Static<typeof SecurityEventSchema>

export const SecurityEventPageSchema = Type.Object({
  events: Type.Array(ref(SecurityEventSchema)),
  next_before: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `before` for the next (older) page; null on the last page' })
}, { $id: 'SecurityEventPage', additionalProperties: false })
export type SecurityEventPage = Static<typeof SecurityEventPageSchema>

export const SecurityEventsQuerySchema = Type.Object({
  before: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{24}$', description: 'An event id: the page starts just after it (older events)' })),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 })
}, { additionalProperties: false })

export const SecurityEventParamsSchema = Type.Object({ event_id: IdParamSchema }, { additionalProperties: false })

export const NotMeResultSchema = Type.Object({
  detail: Type.String(),
  sessions_ended: Type.Integer({ description: 'sessions ended by this report (every one but the caller\'s)' })
}, { additionalProperties: false })
