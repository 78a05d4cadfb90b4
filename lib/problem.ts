import { STATUS_CODES } from 'node:http'
import type { Problem, ValidationIssue } from '../schemas/common.js'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'

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
