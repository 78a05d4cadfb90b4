/** Assertions on the contract's error bodies (RFC 9457 problem details, FastAPI-style 422s). */
import type { LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'

const PROBLEM_FIELDS = ['detail', 'request_id', 'status', 'title', 'type']

/**
 * A problem+json answer with `status`: exactly the problem fields, the request id of the
 * X-Request-Id header, and `detail` when given (a string; on a 422, FastAPI's list of problems).
 */
export function assertProblem (t: Test, res: LightMyRequestResponse, status: number, detail?: string) {
  t.equal(res.statusCode, status, `status ${status}`)
  t.match(res.headers['content-type'], /^application\/problem\+json/, 'problem+json')
  const body = res.json()
  t.same(Object.keys(body).sort(), PROBLEM_FIELDS, 'problem fields')
  t.equal(body.status, status)
  t.equal(body.type, 'about:blank')
  t.equal(typeof body.title, 'string')
  if (status === 422) t.ok(Array.isArray(body.detail), 'detail is the list of problems')
  else t.equal(typeof body.detail, 'string')
  t.equal(typeof body.request_id, 'string')
  t.equal(body.request_id, res.headers['x-request-id'], 'request_id matches the x-request-id header')
  if (detail !== undefined) t.equal(body.detail, detail, `detail "${detail}"`)
  return body
}

/** A 422 whose list of problems (`detail`, as FastAPI answers) includes one at `loc`. */
export function assertValidation (t: Test, res: LightMyRequestResponse, loc: Array<string | number>) {
  const body = assertProblem(t, res, 422)
  t.ok(body.detail.length > 0, 'problems listed')
  for (const e of body.detail) {
    t.strictSame(Object.keys(e).sort(), ['loc', 'msg', 'type'], 'each problem is { loc, msg, type }')
    t.ok(Array.isArray(e.loc) && typeof e.msg === 'string' && typeof e.type === 'string', 'with a path, a message and a type')
  }
  t.ok(body.detail.some((e: { loc: unknown[] }) => JSON.stringify(e.loc) === JSON.stringify(loc)), `a problem at ${JSON.stringify(loc)}`)
  return body
}
