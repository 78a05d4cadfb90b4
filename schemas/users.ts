import { Type, type Static } from 'typebox'
import { DateTimeSchema, IdParamSchema } from './common.js'

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
