import { Type, type Static } from 'typebox'
import { EmailSchema, PasswordSchema, StoredText } from './common.js'

/** A password being checked, not set: no policy, only a bound on the work it can cause. */
const PresentedPasswordSchema = Type.String({ maxLength: 1024, format: 'password' })
const OneTimeTokenSchema = Type.String({ minLength: 1, maxLength: 512 })

export const RegisterBodySchema = Type.Object({
  email: EmailSchema,
  password: PasswordSchema
}, { additionalProperties: false })

const loginFields = {
  password: PresentedPasswordSchema,
  grant_type: Type.Optional(Type.String({ pattern: '^password$' })),
  scope: Type.Optional(Type.String({ maxLength: 1024, default: '' })),
  client_id: Type.Optional(Type.String({ maxLength: 1024 })),
  client_secret: Type.Optional(Type.String({ maxLength: 1024 }))
}

/** OAuth2 password form (RFC 6749 4.3) or the same fields as JSON; `email` may stand for `username`. */
export const LoginBodySchema = Type.Object({
  username: Type.Optional(StoredText({ maxLength: 254, description: 'the account email' })),
  email: Type.Optional(StoredText({ maxLength: 254, description: 'JSON alias of username' })),
  ...loginFields
}, { additionalProperties: false })

/**
 * The login body as the document offers it: the OAuth2 form only, so generated clients send the
 * form (one body in two media types breaks openapi-python-client). JSON is accepted all the same.
 */
export const LoginFormSchema = Type.Object({
  username: StoredText({ maxLength: 254, description: 'the account email' }),
  ...loginFields,
  // No `default` here: generators make a field with a default one the caller must give.
  scope: Type.Optional(Type.String({ maxLength: 1024, description: 'space-separated scopes; none are defined' }))
}, { additionalProperties: false })
export type LoginBody = Static<typeof LoginBodySchema>

export const TokenSchema = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer({ description: 'seconds until the access token expires' }),
  expires_at: Type.String({ format: 'date-time', description: 'when the access token expires' }),
  refresh_token: Type.String({ description: 'opaque; exchange it at POST /auth/refresh for new tokens (it works once)' })
}, { $id: 'Token', additionalProperties: false })

export const RefreshBodySchema = Type.Object({ refresh_token: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false })

export const DeleteAccountBodySchema = Type.Object({ password: PresentedPasswordSchema }, { additionalProperties: false })
export type Token = Static<typeof TokenSchema>

export const ChangePasswordBodySchema = Type.Object({
  current_password: PresentedPasswordSchema,
  new_password: PasswordSchema
}, { additionalProperties: false })

export const TokenParamsSchema = Type.Object({ token: OneTimeTokenSchema }, { additionalProperties: false })
export const TokenBodySchema = Type.Object({ token: OneTimeTokenSchema }, { additionalProperties: false })

/** Resend and forgot take the address as the original's query parameter or as JSON. */
export const EmailQuerySchema = Type.Object({ email: Type.Optional(EmailSchema) }, { additionalProperties: false })
export const EmailBodySchema = Type.Object({ email: Type.Optional(EmailSchema) }, { additionalProperties: false })

export const NewPasswordBodySchema = Type.Object({ new_password: Type.Optional(PasswordSchema) }, { additionalProperties: false })
export const NewPasswordQuerySchema = Type.Object({
  new_password: Type.Optional(Type.String({ ...PasswordSchema, description: "the original's way; prefer the JSON body" }))
}, { additionalProperties: false })
export const ResetBodySchema = Type.Object({ token: OneTimeTokenSchema, new_password: PasswordSchema }, { additionalProperties: false })
