import { parse as parseForm } from 'node:querystring'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { MalformedBodyError, UnsupportedMediaTypeError } from './errors.js'

/** Far deeper than any body of this API; shallow enough that no parser or validator recursion can hurt. */
export const MAX_JSON_DEPTH = 32

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

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The body as text, or null when it is not valid UTF-8. Decoding with replacement would make
 * different byte strings one password.
 */
function decodeUtf8 (body: Buffer): string | null {
  try {
    return utf8.decode(body)
  } catch {
    return null
  }
}

/** True when every %-escape of a form decodes to UTF-8 (a lone `%` is a plain character). */
function escapesAreUtf8 (form: string): boolean {
  try {
    decodeURIComponent(form.replace(/%(?![0-9a-fA-F]{2})/g, '%25'))
    return true
  } catch {
    return false
  }
}

/**
 * Bodies are JSON unless a route declares other media types in `schema.consumes` (only the login
 * form does); anything else is a 415 before the body is read.
 *
 * JSON goes through Fastify's own parser (prototype poisoning refused) behind a depth check. An
 * empty body is "no body", as FastAPI treats it, so routes that take their input from the query
 * still work when a client sends `Content-Type: application/json` without a body. Both JSON and
 * the login form must be UTF-8, in their bytes and (the form) in their %-escapes.
 */
export default fp(async function bodyParsing (fastify) {
  fastify.removeContentTypeParser('text/plain')
  fastify.addHook('preParsing', (request, _reply, payload, done) => {
    const type = request.headers['content-type']
    const hasBody = request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0
    if (type === undefined || !hasBody || request.routeOptions.schema?.body === undefined) return done(null, payload)
    const media = type.split(';')[0]!.trim().toLowerCase()
    const accepted = request.routeOptions.schema.consumes ?? ['application/json']
    if (!accepted.includes(media)) return done(new UnsupportedMediaTypeError(`Unsupported media type ${media}`))
    done(null, payload)
  })

  const defaultParser = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request: FastifyRequest, body: Buffer, done) => {
    const text = decodeUtf8(body)
    if (text === null) return done(new MalformedBodyError('Body is not valid UTF-8'), undefined)
    if (text.trim() === '') return done(null, undefined)
    if (nestsDeeperThan(text, MAX_JSON_DEPTH)) return done(new MalformedBodyError('Body is nested too deeply'), undefined)
    defaultParser(request, text, (error, value) => {
      if (error) return done(new MalformedBodyError('Body is not valid JSON'), undefined)
      done(null, value)
    })
  })

  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: 16 * 1024 }, (_request, body: Buffer, done) => {
    const text = decodeUtf8(body)
    if (text === null || !escapesAreUtf8(text)) return done(new MalformedBodyError('Body is not valid UTF-8'), undefined)
    done(null, parseForm(text))
  })
}, { name: 'body-parsing' })
