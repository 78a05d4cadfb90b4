import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { apiSecurityHeaders } from '../plugins/external/helmet.js'
import { PROBLEM_CONTENT_TYPE, problem } from './problem.js'

/**
 * Answers for requests refused before any hook runs: by the router (`frameworkErrors`: a bad
 * %-escape, a path parameter over `maxParamLength`) or by Node's HTTP parser (`clientErrorHandler`:
 * headers over the limit, a garbage request line). Both answer as every other error does (problem
 * details, a request id, helmet's headers, no-store) and never echo or log the path, which may hold
 * a token.
 */
const headers = { ...apiSecurityHeaders(), 'cache-control': 'no-store' }

const routerAnswers: Record<string, [number, string]> = {
  FST_ERR_BAD_URL: [400, 'Malformed request'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'URI Too Long']
}

export function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const [status, detail] = routerAnswers[error.code] ?? [500, 'Internal Server Error']
  if (status >= 500) request.log.error({ code: error.code }, 'router failed')
  else request.log.info({ status, code: error.code }, 'request refused by the router')
  reply.headers(headers).header('x-request-id', request.id).code(status).type(PROBLEM_CONTENT_TYPE)
  return reply.send(problem(status, detail, request.id))
}

const parseAnswers: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408
}

export function clientErrorHandler (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket) {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const status = parseAnswers[error.code ?? ''] ?? 400
  const id = randomUUID()
  // Only the code: the parser's error carries the raw bytes it read (`rawPacket`), tokens included.
  this.log.info({ request_id: id, status, code: error.code }, 'request refused by the HTTP parser')
  if (socket.writable) {
    const body = JSON.stringify(problem(status, status === 400 ? 'Malformed request' : STATUS_CODES[status]!, id))
    const head = Object.entries({ ...headers, 'content-type': PROBLEM_CONTENT_TYPE, 'content-length': String(Buffer.byteLength(body)), 'x-request-id': id, connection: 'close' })
      .map(([name, value]) => `${name}: ${value}\r\n`).join('')
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${body}`)
  }
  socket.destroySoon()
}
