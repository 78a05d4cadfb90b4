import { randomUUID } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Writable } from 'node:stream'
import AutoLoad from '@fastify/autoload'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import type { Server } from 'node:http'
import Fastify, { LogController, type FastifyError, type FastifyHttpOptions, type FastifyInstance, type FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { stdTimeFunctions } from 'pino'
import { isDatabaseUnavailable } from './lib/database-errors.js'
import { registerBodyParsing } from './plugins/app/platform/body-parsing.js'
import { registerDraining } from './plugins/app/platform/draining.js'
import { PROBLEM_CONTENT_TYPE, problem, RequestValidationError } from './lib/problem.js'
import { redactPaths, redactUrl } from './lib/redact.js'
import { toValidationIssues } from './plugins/app/platform/validation-issues.js'

const root = dirname(fileURLToPath(import.meta.url))

/** Settings as strings, exactly as the environment gives them; plugins/external/env.ts validates them. */
export type RawEnv = Record<string, string | undefined>

export interface AppOptions {
  env: RawEnv
}

const logLevels = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

/** Server-level options, shared by server.ts and the tests so both run the same server. */
export function serverOptions (env: RawEnv, logStream?: Writable): FastifyHttpOptions<Server> {
  const level = logLevels.has(env.LOG_LEVEL ?? '') ? env.LOG_LEVEL : 'info'
  return {
    logger: {
      level,
      stream: logStream,
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
    trustProxy: false
  }
}

/**
 * Bodies are validated strictly (a number is not a string, as in pydantic); query, path and header
 * values arrive as text and are coerced. Both report every problem so a 422 can list them all;
 * body size and array limits bound that work.
 */
function createValidators () {
  const common = { useDefaults: true, removeAdditional: true, allErrors: true, strict: false } as const
  const body = addFormats.default(new Ajv({ ...common, coerceTypes: false }))
  const text = addFormats.default(new Ajv({ ...common, coerceTypes: 'array' }))
  for (const ajv of [body, text]) ajv.addFormat('password', true)
  return { body, text }
}

const validationParts: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' }

export default async function app (fastify: FastifyInstance, opts: AppOptions) {
  const validators = createValidators()
  fastify.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? validators.body : validators.text).compile(schema))
  fastify.setSchemaErrorFormatter((errors, dataVar) => {
    const error = new Error(`${dataVar} is invalid`) as FastifyError & { issues: unknown }
    error.issues = toValidationIssues(errors, validationParts[dataVar] ?? dataVar)
    return error
  })
  registerBodyParsing(fastify)
  // First of all hooks, so answers that plugins' hooks give early (429, 503) carry them too.
  // Hooks that run on every request take a callback: an async hook costs a promise and a microtask.
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    reply.header('cache-control', 'no-store')
    done()
  })

  await fastify.register(AutoLoad, { dir: join(root, 'plugins/external'), options: opts, forceESM: true })
  registerDraining(fastify)
  await fastify.register(AutoLoad, { dir: join(root, 'plugins/app'), options: opts, forceESM: true })

  fastify.setErrorHandler((error: FastifyError & { issues?: unknown, headers?: Record<string, string>, expose?: boolean }, request, reply) => {
    const status = statusOf(error)
    // A database that cannot answer is an operational condition, not a bug: no stack, no error level.
    if (status === 503) request.log.warn({ status, reason: error.message }, 'service unavailable')
    else if (status >= 500) request.log.error({ err: error }, 'request failed')
    else request.log.info({ status, code: error.code }, error.message)

    if (error.headers) reply.headers(error.headers)
    reply.code(status).type(PROBLEM_CONTENT_TYPE)

    if (status === 422) {
      const issues = error instanceof RequestValidationError ? error.issues : (error.issues ?? [])
      const first = (issues as Array<{ loc: Array<string | number>, msg: string }>)[0]
      const detail = first ? `${first.loc.slice(1).join('.') || first.loc[0]}: ${first.msg}` : 'Invalid request'
      return reply.send(problem(422, detail, request.id, issues as never))
    }
    if (status === 503) {
      reply.header('retry-after', '5')
      return reply.send(problem(503, 'Service temporarily unavailable, retry shortly', request.id))
    }
    // A 5xx says nothing of its cause unless its error is meant for the client (the assistant's 502).
    if (status >= 500 && error.expose !== true) return reply.send(problem(status, 'Internal Server Error', request.id))
    return reply.send(problem(status, detailFor(error, status), request.id))
  })

  fastify.setNotFoundHandler((request, reply) => {
    reply.code(404).type(PROBLEM_CONTENT_TYPE).send(problem(404, 'Not Found', request.id))
  })

  await fastify.register(AutoLoad, {
    dir: join(root, 'routes'),
    options: opts,
    forceESM: true,
    autoHooks: true,
    cascadeHooks: true
  })
}

function statusOf (error: FastifyError & { issues?: unknown }): number {
  if (error.validation || error.issues || error instanceof RequestValidationError) return 422
  if (isDatabaseUnavailable(error)) return 503
  const status = error.statusCode
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500
}

function detailFor (error: FastifyError, status: number): string {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return 'Request body is too large'
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return 'Unsupported media type; send application/json'
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH': return 'Content-Length does not match the body'
  }
  if (status === 400 && error.code?.startsWith('FST_')) return 'Malformed request'
  return error.message
}

/** A ready-to-listen Fastify with the app, as server.ts and the tests build it. */
export async function buildApp (env: RawEnv, logStream?: Writable) {
  const fastify = Fastify(serverOptions(env, logStream))
  await fastify.register(fp(app, { name: 'app' }), { env })
  return fastify
}
