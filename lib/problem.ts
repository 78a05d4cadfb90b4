import { STATUS_CODES } from 'node:http'
import type { Problem } from '../schemas/common.js'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'

export interface ValidationIssue {
  loc: Array<string | number>
  msg: string
  type: string
}

/** An RFC 9457 body; `detail` is what the original's clients show to the user. */
export function problem (status: number, detail: string, requestId: string, errors?: ValidationIssue[]): Problem {
  const body: Problem = {
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    request_id: requestId
  }
  if (errors) body.errors = errors
  return body
}

/** A 422 raised by a handler for a rule the schema cannot say (e.g. "username or email"). */
export class RequestValidationError extends Error {
  readonly statusCode = 422
  constructor (readonly issues: ValidationIssue[]) {
    super(issues[0]?.msg ?? 'Invalid request')
  }
}
