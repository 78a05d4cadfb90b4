/** Assertions on the contract's error bodies (RFC 9457 problem details, FastAPI-style 422s). */
import type { LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'

const PROBLEM_FIELDS = ['detail', 'request_id', 'status', 'title', 'type']
const VALIDATION_FIELDS = ['detail', 'errors', 'request_id', 'status', 'title', 'type']

/**
 * A problem+json answer with `status`: exactly the problem fields (and `errors` on a 422), the
 * request id of the X-Request-Id header, and `detail` when given.
 */
export function assertProblem (t: Test, res: LightMyRequestResponse, status: number, detail?: string) {
  t.equal(res.statusCode, status, `status ${status}`)
  t.match(res.headers['content-type'], /^application\/problem\+json/, 'problem+json')
  const body = res.json()
  t.same(Object.keys(body).sort(), status === 422 ? VALIDATION_FIELDS : PROBLEM_FIELDS, 'problem fields')
  t.equal(body.status, status)
  t.equal(body.type, 'about:blank')
  t.equal(typeof body.title, 'string')
  t.equal(typeof body.detail, 'string')
  t.equal(typeof body.request_id, 'string')
  t.equal(body.request_id, res.headers['x-request-id'], 'request_id matches the x-request-id header')
  if (detail !== undefined) t.equal(body.detail, detail, `detail "${detail}"`)
  return body
}

/** A 422 whose errors include one at `loc`. */
export function assertValidation (t: Test, res: LightMyRequestResponse, loc: Array<string | number>) {
  const body = assertProblem(t, res, 422)
  t.ok(Array.isArray(body.errors) && body.errors.length > 0, 'errors listed')
  for (const e of body.errors ?? []) {
    t.ok(Array.isArray(e.loc) && typeof e.msg === 'string' && typeof e.type === 'string', 'each error has loc, msg, type')
  }
  t.ok(body.errors?.some((e: { loc: unknown[] }) => JSON.stringify(e.loc) === JSON.stringify(loc)), `an error at ${JSON.stringify(loc)}`)
  t.equal(typeof body.detail, 'string')
}
