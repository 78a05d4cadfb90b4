import t from 'tap'
import { buildApp } from '../../app.js'
import { ConfigError } from '../../plugins/external/env.js'
import { build, testEnv } from '../support/app.js'

async function bootError (overrides: Record<string, string | undefined>) {
  const env = { ...await testEnv(), ...overrides }
  try {
    const app = await buildApp(env)
    await app.ready()
    await app.close()
    return null
  } catch (error) {
    return error
  }
}

t.test('production refuses to start without a SECRET_KEY', async (t) => {
  const error = await bootError({ NODE_ENV: 'production', SECRET_KEY: undefined })
  t.type(error, ConfigError)
  t.match((error as Error).message, /SECRET_KEY: required outside development and tests/)
})

t.test('a SECRET_KEY under 32 characters is refused', async (t) => {
  const error = await bootError({ NODE_ENV: 'production', SECRET_KEY: 'short-secret' })
  t.match((error as Error).message, /SECRET_KEY: must be at least 32 characters/)
})

t.test('production refuses an http FRONTEND_URL off this machine; https and loopback pass', async (t) => {
  const production = { NODE_ENV: 'production', SECRET_KEY: 'a-production-secret-of-32-characters!' }
  const error = await bootError({ ...production, FRONTEND_URL: 'http://app.example.com' })
  t.type(error, ConfigError)
  t.strictSame((error as ConfigError).problems, ['FRONTEND_URL: must be https in production (mail links carry one-time tokens)'])
  for (const url of ['https://app.example.com', 'http://localhost:3000', 'http://127.0.0.1:3000']) {
    t.equal(await bootError({ ...production, FRONTEND_URL: url }), null, `${url} passes`)
  }
  t.equal(await bootError({ FRONTEND_URL: 'http://app.example.com' }), null, 'tests and development may use http')
})

t.test('mail settings: the sender must be an address, links live at most 60 min / 24 h', async (t) => {
  const error = await bootError({ MAIL_FROM: 'not an address', RESET_TOKEN_EXPIRE_MINUTES: '120', VERIFICATION_TOKEN_EXPIRE_HOURS: '48' })
  t.type(error, ConfigError)
  const problems = (error as ConfigError).problems
  for (const name of ['MAIL_FROM', 'RESET_TOKEN_EXPIRE_MINUTES', 'VERIFICATION_TOKEN_EXPIRE_HOURS']) {
    t.ok(problems.some((p) => p.startsWith(`${name}:`)), `${name} is named`)
  }
  t.equal(problems.length, 3)
})

t.test('mail settings: a login needs both its parts', async (t) => {
  for (const half of [{ MAIL_USERNAME: 'mailer' }, { MAIL_PASSWORD: 'secret' }]) {
    const error = await bootError(half)
    t.type(error, ConfigError)
    t.strictSame((error as ConfigError).problems, ['MAIL_USERNAME, MAIL_PASSWORD: set both or neither'])
  }
})

t.test('ALGORITHM other than HS256 is refused', async (t) => {
  const error = await bootError({ ALGORITHM: 'HS512' })
  t.match((error as Error).message, /ALGORITHM: only HS256 is supported/)
})

t.test('every bad value is named, one line each', async (t) => {
  const error = await bootError({ PORT: 'eighty', ACCESS_TOKEN_EXPIRE_MINUTES: '-5', LOG_LEVEL: 'loud', ARGON2_MEMORY_KIB: '4096' })
  t.type(error, ConfigError)
  const problems = (error as ConfigError).problems
  for (const name of ['PORT', 'ACCESS_TOKEN_EXPIRE_MINUTES', 'LOG_LEVEL', 'ARGON2_MEMORY_KIB']) {
    t.ok(problems.some((p) => p.startsWith(`${name}:`)), `${name} is named`)
  }
  t.equal(problems.length, 4, 'one line per bad setting')
})

t.test('development starts without a SECRET_KEY (a random one, with a warning)', async (t) => {
  t.equal(await bootError({ NODE_ENV: 'development', SECRET_KEY: undefined }), null)
})

t.test('MONGODB_URL is required', async (t) => {
  const error = await bootError({ MONGODB_URL: undefined })
  t.match((error as Error).message, /MONGODB_URL: required/)
})

t.test('defaults follow the contract', async (t) => {
  const app = await build(t, { RATE_LIMIT_ENABLED: undefined, ASSISTANT_WORD_DELAY_MS: undefined, LOG_LEVEL: undefined })
  t.match(app.config, {
    PORT: 8000,
    HOST: '127.0.0.1',
    ALGORITHM: 'HS256',
    ACCESS_TOKEN_EXPIRE_MINUTES: 30,
    MAIL_PORT: 465,
    VERIFICATION_TOKEN_EXPIRE_HOURS: 24,
    RESET_TOKEN_EXPIRE_MINUTES: 60,
    VERIFICATION_RESEND_SECONDS: 120,
    FRONTEND_URL: 'http://localhost:3000',
    CORS_ORIGINS: '*',
    RATE_LIMIT_ENABLED: true,
    MAX_STREAMS_PER_USER: 3,
    LOGIN_MAX_FAILURES: 10,
    ASSISTANT_PROVIDER: 'demo',
    ASSISTANT_WORD_DELAY_MS: 100,
    LOG_LEVEL: 'info'
  })
})
