import { randomUUID } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Server } from 'node:http'
import type { Writable } from 'node:stream'
import AutoLoad from '@fastify/autoload'
import Fastify, { LogController, type FastifyError, type FastifyHttpOptions, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { stdTimeFunctions } from 'pino'
import { isDatabaseUnavailable } from './lib/database-errors.js'
import { clientErrorHandler, frameworkErrors } from './lib/early-errors.js'
import { PROBLEM_CONTENT_TYPE, problem, validationProblem } from './lib/problem.js'
import { redactPaths, redactUrl } from './lib/redact.js'
import { trustProxy } from './lib/trust-proxy.js'
import { EmailTakenError, HasherBusyError, InvalidTokenError, NotAuthenticatedError, TooManyFailuresError } from './plugins/app/auth/errors.js'
import {
  AssistantRefusedError, ChatBusyError, ChatNotFoundError, MessageNotFoundError, StreamCapacityError, TooManyStreamsError
} from './plugins/app/chat/errors.js'
import {
  DatabaseNotReadyError, MalformedBodyError, RequestValidationError, ShuttingDownError, UnsupportedMediaTypeError
} from './plugins/app/platform/errors.js'
import type { ValidationIssue } from './schemas/common.js'

const root = dirname(fileURLToPath(import.meta.url))

/** Settings as strings, exactly as the environment gives them; plugins/external/env.ts validates them. */
export type RawEnv = Record<string, string | undefined>

export interface AppOptions {
  env: RawEnv
}

const logLevels = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

/** Where the log goes: a stream of JSON lines (tests), or readable lines for a person at a terminal. */
export interface LogOutput {
  stream?: Writable
  /** Through pino-pretty (server.ts: when stdout is a terminal, outside production). */
  pretty?: boolean
}

/** Server-level options, shared by server.ts and the tests so both run the same server. */
export function serverOptions (env: RawEnv, output: LogOutput = {}): FastifyHttpOptions<Server> {
  const level = logLevels.has(env.LOG_LEVEL ?? '') ? env.LOG_LEVEL : 'info'
  return {
    logger: {
      level,
      ...(output.pretty
        ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } }
        : { stream: output.stream }),
      timestamp: stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '[redacted]' },
      serializers: {
        req: (request: FastifyRequest) => ({ method: request.method, url: redactUrl(request.url), ip: request.ip }),
        res: (reply: { statusCode: number }) => ({ status: reply.statusCode })
      }
    },
    // Health probes would otherwise write two log lines every few seconds, forever.
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: (request) => request.url.startsWith('/health') }),
    genReqId: () => randomUUID(),
    // Loading every plugin includes hashing the dummy password; generous on a busy 2-core box.
    pluginTimeout: 60_000,
    // Slow or stalled clients are cut off; streams stay alive through their own heartbeats.
    requestTimeout: 30_000,
    // Checked every second (Node's default is 30 s), so a slowloris socket is cut near 30 s, not 60.
    http: { connectionsCheckingInterval: 1000 },
    connectionTimeout: 60_000,
    keepAliveTimeout: 72_000,
    bodyLimit: 1024 * 1024,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 600 },
    // lib/draining.ts answers instead, as problem+json.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // A bad value is off here; plugins/external/env.ts then refuses to start, naming it.
    trustProxy: trustProxy(env.TRUST_PROXY) ?? false,
    frameworkErrors,
    clientErrorHandler
  }
}

export default async function app (fastify: FastifyInstance, opts: AppOptions) {
  // First of all hooks, so answers that plugins' hooks give early (429, 503) carry them too.
  // Hooks that run on every request take a callback: an async hook costs a promise and a microtask.
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    reply.header('cache-control', 'no-store')
    done()
  })

  // Before any plugin, so the routes plugins add (Swagger UI) answer with problems too.
  fastify.setErrorHandler((error: HandledError, request, reply) => {
    const { status, headers, expose } = answerFor(error)
    // A request for no route that Fastify refused before routing (a QUERY without Content-Type).
    if (request.is404 && status < 500) return notFound(request, reply)
    // A database that cannot answer is an operational condition, not a bug: no stack, no error level.
    if (status === 503) request.log.warn({ status, reason: error.message }, 'service unavailable')
    else if (status >= 500) request.log.error({ err: error }, 'request failed')
    else request.log.info({ status, code: error.code }, error.message)

    if (headers) reply.headers(headers)
    reply.code(status).type(PROBLEM_CONTENT_TYPE)

    if (status === 422) return reply.send(validationProblem(error.issues ?? [], request.id))
    if (status === 503) {
      reply.header('retry-after', '5')
      return reply.send(problem(503, 'Service temporarily unavailable, retry shortly', request.id))
    }
    // A 5xx says nothing of its cause unless its error is meant for the client (the assistant's 502).
    if (status >= 500 && !expose) return reply.send(problem(status, 'Internal Server Error', request.id))
    return reply.send(problem(status, detailFor(error, status), request.id))
  })

  // A known path asked with another method is a 405 naming the methods it has, as FastAPI answers.
  function notFound (request: FastifyRequest, reply: FastifyReply) {
    const url = request.url.split('?', 1)[0]!
    const allowed = ROUTED_METHODS.filter((method) => method !== request.method && fastify.findRoute({ method, url }))
    if (allowed.length > 0) {
      return reply.code(405).header('allow', allowed.join(', ')).type(PROBLEM_CONTENT_TYPE).send(problem(405, 'Method Not Allowed', request.id))
    }
    return reply.code(404).type(PROBLEM_CONTENT_TYPE).send(problem(404, 'Not Found', request.id))
  }
  fastify.setNotFoundHandler(notFound)

  await fastify.register(AutoLoad, { dir: join(root, 'plugins/external'), options: opts, forceESM: true })
  await fastify.register(AutoLoad, { dir: join(root, 'plugins/app'), options: opts, forceESM: true })

  await fastify.register(AutoLoad, {
    dir: join(root, 'routes'),
    options: opts,
    forceESM: true,
    autoHooks: true,
    cascadeHooks: true
  })
}

/** The methods routes are declared with (OPTIONS is CORS's for every path, HEAD follows GET). */
const ROUTED_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const

type HandledError = FastifyError & { issues?: ValidationIssue[] }

interface Answer {
  status: number
  headers?: Record<string, string>
  /** A 5xx whose message is meant for the client. */
  expose?: boolean
}

type ErrorClass<E extends Error> = abstract new (...args: never[]) => E
const answer = <E extends Error>(type: ErrorClass<E>, to: (error: E) => Answer) => ({ type, to: to as (error: Error) => Answer })

/** The one place where our errors meet HTTP: each domain error and the problem it answers with. */
const answers = [
  answer(ShuttingDownError, () => ({ status: 503, headers: { connection: 'close' } })),
  answer(DatabaseNotReadyError, () => ({ status: 503 })),
  answer(MalformedBodyError, () => ({ status: 400 })),
  answer(UnsupportedMediaTypeError, () => ({ status: 415 })),
  answer(RequestValidationError, () => ({ status: 422 })),
  answer(NotAuthenticatedError, () => ({ status: 401, headers: { 'www-authenticate': 'Bearer' } })),
  answer(InvalidTokenError, () => ({ status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' } })),
  answer(TooManyFailuresError, (error) => ({ status: 429, headers: { 'retry-after': String(error.retryAfterSeconds) } })),
  answer(EmailTakenError, () => ({ status: 400 })),
  answer(HasherBusyError, () => ({ status: 503 })),
  answer(ChatNotFoundError, () => ({ status: 404 })),
  answer(MessageNotFoundError, () => ({ status: 404 })),
  answer(ChatBusyError, () => ({ status: 409 })),
  answer(TooManyStreamsError, () => ({ status: 429, headers: { 'retry-after': '5' } })),
  answer(StreamCapacityError, () => ({ status: 503 })),
  answer(AssistantRefusedError, () => ({ status: 502, expose: true }))
]

/** Our errors by the table; Fastify's and its plugins' (sensible, rate-limit) by their statusCode. */
function answerFor (error: HandledError): Answer {
  if (error.validation || error.issues) return { status: 422 }
  const known = answers.find(({ type }) => error instanceof type)
  if (known) return known.to(error)
  if (isDatabaseUnavailable(error)) return { status: 503 }
  const status = error.statusCode
  return {
    status: typeof status === 'number' && status >= 400 && status < 600 ? status : 500,
    headers: (error as { headers?: Record<string, string> }).headers
  }
}

function detailFor (error: FastifyError, status: number): string {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return 'Request body is too large'
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return 'Unsupported media type; send application/json'
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH': return 'Content-Length does not match the body'
  }
  if (error instanceof UnsupportedMediaTypeError) return 'Unsupported media type; send application/json'
  if (status === 400 && error.code?.startsWith('FST_')) return 'Malformed request'
  return error.message
}

/** A ready-to-listen Fastify with the app, as server.ts and the tests build it. */
export async function buildApp (env: RawEnv, output: LogOutput = {}) {
  const fastify = Fastify(serverOptions(env, output))
  await fastify.register(fp(app, { name: 'app' }), { env })
  return fastify
}
