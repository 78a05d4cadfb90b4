import fastifyEnv from '@fastify/env'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import fp from 'fastify-plugin'
import type { AppOptions, RawEnv } from '../../app.js'
import { trustProxy } from '../../lib/trust-proxy.js'
import { EnvSchema, type Config } from '../../schemas/env.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/** Thrown at boot with one line per bad or missing setting. */
export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

interface AjvIssue { instancePath: string, keyword: string, message?: string, params: Record<string, unknown> }

function describe (issue: AjvIssue): string {
  const name = issue.instancePath.replace(/^\//, '') || String(issue.params.missingProperty ?? 'setting')
  if (issue.keyword === 'const' || issue.keyword === 'anyOf') return `${name}: not one of the allowed values`
  return `${name}: ${issue.message ?? 'invalid'}`
}

/** https, or a loopback host (a production build tried out locally). */
function isHttpsOrLoopback (url: string): boolean {
  const { protocol, hostname } = new URL(url)
  return protocol === 'https:' || ['localhost', '127.0.0.1', '[::1]'].includes(hostname)
}

/** Cross-setting rules the schema cannot say. */
function checkRules (config: Config): string[] {
  const problems: string[] = []
  const relaxed = config.NODE_ENV === 'development' || config.NODE_ENV === 'test'
  if (config.ALGORITHM !== 'HS256') problems.push(`ALGORITHM: only HS256 is supported (got "${config.ALGORITHM}")`)
  if (config.SECRET_KEY === undefined && !relaxed) problems.push('SECRET_KEY: required outside development and tests')
  if (config.SECRET_KEY !== undefined && config.SECRET_KEY.length < 32) problems.push('SECRET_KEY: must be at least 32 characters')
  if (config.NODE_ENV === 'production' && !isHttpsOrLoopback(config.FRONTEND_URL)) {
    problems.push('FRONTEND_URL: must be https in production (mail links carry one-time tokens)')
  }
  if ((config.MAIL_USERNAME === undefined) !== (config.MAIL_PASSWORD === undefined)) {
    problems.push('MAIL_USERNAME, MAIL_PASSWORD: set both or neither')
  }
  if (trustProxy(config.TRUST_PROXY) === undefined) {
    problems.push('TRUST_PROXY: true, or comma-separated proxy addresses and CIDR ranges (no hop count)')
  }
  if (config.MONGODB_URL === undefined) problems.push('MONGODB_URL: required (`npm run dev` starts an embedded database when it is unset)')
  if (config.ASSISTANT_PROVIDER === 'openai') {
    if (!config.ASSISTANT_BASE_URL) problems.push('ASSISTANT_BASE_URL: required when ASSISTANT_PROVIDER is openai (e.g. https://api.openai.com/v1)')
    else if (!/^https?:\/\/[^/]/.test(config.ASSISTANT_BASE_URL)) problems.push('ASSISTANT_BASE_URL: must be an http(s) URL')
    if (!config.ASSISTANT_MODEL) problems.push('ASSISTANT_MODEL: required when ASSISTANT_PROVIDER is openai (the model of chats that name none)')
  }
  return problems
}

/** Empty values count as unset, as in most .env tooling. */
function withoutEmpty (env: RawEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''))
}

export default fp(async function env (fastify, opts: AppOptions) {
  try {
    await fastify.register(fastifyEnv, {
      schema: EnvSchema,
      data: withoutEmpty(opts.env),
      env: false,
      dotenv: false,
      ajv: { customOptions: () => addFormats.default(new Ajv({ allErrors: true, coerceTypes: true, useDefaults: true, removeAdditional: true, strict: false })) }
    })
  } catch (error) {
    const issues = (error as { errors?: AjvIssue[] }).errors
    if (!issues) throw error
    throw new ConfigError([...new Set(issues.filter((i) => i.keyword !== 'anyOf' || issues.length === 1).map(describe))])
  }
  const problems = checkRules(fastify.config)
  if (problems.length > 0) throw new ConfigError(problems)
  fastify.log.level = fastify.config.LOG_LEVEL
}, { name: 'env' })
