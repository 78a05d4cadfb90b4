import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * Security headers. The API itself serves only JSON, so its policy forbids everything; Swagger UI
 * sets its own, looser policy on /docs.
 */
const options: HelmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  crossOriginResourcePolicy: { policy: 'same-site' }
}

/** The headers helmet sets with these options (they do not depend on the request), read once. */
export function helmetHeaders (helmetOptions: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader (name: string, value: string) { headers[name.toLowerCase()] = value },
    removeHeader (name: string) { delete headers[name.toLowerCase()] }
  }
  helmet(helmetOptions)({} as IncomingMessage, response as unknown as ServerResponse, () => {})
  return headers
}

/** The headers every API answer carries, for answers given before any hook runs (lib/early-errors.ts). */
export const apiSecurityHeaders = () => helmetHeaders(options)

/**
 * @fastify/helmet builds helmet anew for every request and writes each header on the raw
 * response; the same headers set once as reply headers cost a fraction of that.
 */
export default fp(async function helmetPlugin (fastify) {
  const headers = helmetHeaders(options)
  fastify.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers)
    done()
  })
}, { name: 'helmet' })
