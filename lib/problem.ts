import { STATUS_CODES } from 'node:http'
import type { Problem, ValidationIssue, ValidationProblem } from '../schemas/common.js'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'

/** An RFC 9457 body; `detail` is what the original's clients show to the user. */
export function problem (status: number, detail: string, requestId: string): Problem {
  return { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, request_id: requestId }
}

/** A 422 as FastAPI answers it: the problems in `detail` (the original's web client reads `detail[0].msg`). */
export function validationProblem (issues: ValidationIssue[], requestId: string): ValidationProblem {
  return { type: 'about:blank', title: STATUS_CODES[422]!, status: 422, detail: issues, request_id: requestId }
}
