import { Type, type Static } from 'typebox'
import { DateTimeSchema } from './common.js'

/** Everything a client ever learns about a user. */
export const UserSchema = Type.Object({
  id: Type.String(),
  email: Type.String(),
  is_verified: Type.Boolean(),
  created_at: DateTimeSchema
}, { $id: 'User', additionalProperties: false })
export type User = Static<typeof UserSchema>
