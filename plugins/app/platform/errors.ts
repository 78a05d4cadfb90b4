import type { ValidationIssue } from '../../../schemas/common.js'

/** What goes wrong before a route's own work: app.ts maps each of these to its problem. */

export class ShuttingDownError extends Error {
  constructor () { super('server is shutting down') }
}

export class DatabaseNotReadyError extends Error {
  constructor () { super('Database not ready') }
}

export class MalformedBodyError extends Error {}

export class UnsupportedMediaTypeError extends Error {}

/** A 422 raised by a handler for a rule the schema cannot say (e.g. "username or email"). */
export class RequestValidationError extends Error {
  constructor (readonly issues: ValidationIssue[]) {
    super(issues[0]?.msg ?? 'Invalid request')
  }
}
