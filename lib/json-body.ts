import type { FastifyInstance, FastifyRequest } from 'fastify'

/** Far deeper than any body of this API; shallow enough that no parser or validator recursion can hurt. */
export const MAX_JSON_DEPTH = 32

export class JsonBodyError extends Error {
  readonly statusCode = 400
}

/** True when brackets outside strings nest deeper than `max`. One linear pass, no recursion. */
export function nestsDeeperThan (text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) {
      inString = true
    } else if (c === 123 || c === 91) {
      if (++depth > max) return true
    } else if (c === 125 || c === 93) {
      depth--
    }
  }
  return false
}

/**
 * Fastify's own JSON parser (prototype poisoning refused), behind a depth check. An empty body is
 * "no body", as FastAPI treats it, so routes that take their input from the query still work when a
 * client sends `Content-Type: application/json` without a body.
 */
export function registerJsonBodyParser (fastify: FastifyInstance) {
  const defaultParser = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request: FastifyRequest, body: string | Buffer, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    if (text.trim() === '') return done(null, undefined)
    if (nestsDeeperThan(text, MAX_JSON_DEPTH)) return done(new JsonBodyError('Body is nested too deeply'), undefined)
    defaultParser(request, text, (error, value) => {
      if (error) return done(new JsonBodyError('Body is not valid JSON'), undefined)
      done(null, value)
    })
  })
}
