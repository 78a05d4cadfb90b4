import { Type, type Static, type TSchema, type TStringOptions } from 'typebox'

/** A `$ref` to a shared schema, typed as the schema it points to (a bare Type.Ref is `unknown`). */
export function ref<T extends TSchema & { $id?: string }> (schema: T) {
  if (schema.$id === undefined) throw new Error('ref() needs a schema with an $id')
  return Type.Unsafe<Static<T>>(Type.Ref(schema.$id))
}

/**
 * Text the service stores or looks up: anything but U+0000. MongoDB keeps it, but FerretDB on
 * PostgreSQL (the development and test database) cannot, so it is a 422 everywhere, not a 500 there.
 */
export function StoredText (options: TStringOptions = {}) {
  return Type.String({ ...options, pattern: '^[^\\u0000]*$' })
}

/** Emails arrive trimmed and lower-cased (see the normalise-email hook); 254 is the SMTP path limit. */
export const EmailSchema = Type.String({ format: 'email', maxLength: 254, examples: ['user@example.com'] })

/** Any Unicode, never trimmed or altered. Lengths count code points, as the original's pydantic did. */
export const PasswordSchema = Type.String({ minLength: 8, maxLength: 128, format: 'password' })

/** Route ids are plain strings: a malformed id of any length answers the same 404 as an unknown one. */
export const IdParamSchema = Type.String({ description: '24-hex object id' })

export const DateTimeSchema = Type.String({ format: 'date-time' })

export const DetailSchema = Type.Object({
  detail: Type.String()
}, { $id: 'Detail', additionalProperties: false })
export type Detail = Static<typeof DetailSchema>

export const ValidationIssueSchema = Type.Object({
  loc: Type.Array(Type.Union([Type.String(), Type.Integer()])),
  msg: Type.String(),
  type: Type.String()
}, { $id: 'ValidationIssue' })
export type ValidationIssue = Static<typeof ValidationIssueSchema>

const problemFields = {
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  request_id: Type.String()
}

export const ProblemSchema = Type.Object({
  ...problemFields,
  detail: Type.String()
}, { $id: 'Problem', description: 'RFC 9457 problem details' })
export type Problem = Static<typeof ProblemSchema>

/** A validation failure, as FastAPI answers it: `detail` is the list of problems, one entry each. */
export const ValidationProblemSchema = Type.Object({
  ...problemFields,
  detail: Type.Array(ref(ValidationIssueSchema))
}, { $id: 'ValidationProblem', description: 'RFC 9457 problem details of a 422, with FastAPI\'s list in `detail`' })
export type ValidationProblem = Static<typeof ValidationProblemSchema>

export const sharedSchemas = [DetailSchema, ValidationIssueSchema, ProblemSchema, ValidationProblemSchema]

const errorDescriptions: Record<number, string> = {
  400: 'Bad request',
  401: 'Not authenticated or invalid credentials',
  404: 'Not found',
  409: 'Conflict',
  413: 'Body too large',
  415: 'Unsupported content type',
  422: 'Validation error',
  429: 'Too many requests',
  500: 'Unexpected error',
  502: 'Upstream failure',
  503: 'Service unavailable'
}

const RetryAfterSchema = Type.String({ pattern: '^[0-9]+$', description: 'seconds to wait before trying again' })

/** Response headers as the document declares them; every response carries X-Request-Id. */
export type ResponseHeaders = Record<string, TSchema>
/** Tokens and anything else private: never stored by a cache (every JSON answer says so; the document names it where it matters). */
export const noStoreHeader: ResponseHeaders = { 'Cache-Control': Type.String({ examples: ['no-store'] }) }
const everyResponse: ResponseHeaders = {
  'X-Request-Id': Type.String({ description: 'this request\'s id, as in problem bodies and the log' })
}
const errorHeaders: Record<number, ResponseHeaders> = {
  401: { 'WWW-Authenticate': Type.String({ description: '`Bearer` without a token, `Bearer error="invalid_token"` for a bad one' }) },
  429: { 'Retry-After': RetryAfterSchema },
  503: { 'Retry-After': RetryAfterSchema }
}

/** Headers of a response the document declares itself (a stream's): with X-Request-Id, like every response. */
export function responseHeaders (headers: ResponseHeaders = {}): ResponseHeaders {
  return { ...everyResponse, ...headers }
}

/**
 * A success response: the schema with the description and headers the document shows for it
 * (the document drops the siblings of a `$ref` from the schema itself, so they only describe).
 */
export function success<T extends TSchema> (schema: T, description: string, headers: ResponseHeaders = {}) {
  return Type.Unsafe<Static<T>>({ ...schema, description, headers: responseHeaders(headers) })
}

/** Every route can answer these: bad JSON, validation, rate limit, database down, unexpected. */
const alwaysPossible = [400, 422, 429, 500, 503] as const

/** Response entries for the error statuses a route sends, as application/problem+json. */
export function problemResponses (...statuses: number[]) {
  const all = [...new Set([...alwaysPossible, ...statuses])]
  return Object.fromEntries(all.map((status) => [status, {
    description: errorDescriptions[status] ?? 'Error',
    headers: responseHeaders(errorHeaders[status]),
    content: { 'application/problem+json': { schema: status === 422 ? ref(ValidationProblemSchema) : ref(ProblemSchema) } }
  }])) as Record<number, { description: string, headers: ResponseHeaders, content: { 'application/problem+json': { schema: TSchema } } }>
}

/** Body routes can also refuse the body's size and media type. */
export function bodyProblemResponses (...statuses: number[]) {
  return problemResponses(413, 415, ...statuses)
}
