import { Type, type Static } from 'typebox'

const Int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER, description?: string) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description })
const Str = (def: string, description?: string) => Type.String({ default: def, description })
const OptionalStr = (description?: string) => Type.Optional(Type.String({ description }))

/** The one list of settings (contract section 6). Values come from the environment, with `.env` read when present. */
export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('test'), Type.Literal('production')], { default: 'production' }),

  MONGODB_URL: OptionalStr('MongoDB connection string; `npm run dev` starts an embedded database when unset'),
  DATABASE_NAME: Str('app'),
  DATABASE_TIMEOUT_MS: Int(5000, 100, 60_000, 'longest wait for the database (selection, pool, each reply); a request that uses it is answered within this plus 1 s, 503 past that'),

  SECRET_KEY: OptionalStr('JWT signing secret, at least 32 characters (required in production)'),
  ALGORITHM: Str('HS256'),
  ACCESS_TOKEN_EXPIRE_MINUTES: Int(30, 1, 60, 'access token lifetime; sessions live on through refresh tokens'),
  REFRESH_TOKEN_EXPIRE_DAYS: Int(30, 1, 365),

  ARGON2_MEMORY_KIB: Int(19456, 19456, 4 * 1024 * 1024, 'argon2id memory cost; never below the OWASP minimum'),
  ARGON2_TIME_COST: Int(2, 2, 20),
  ARGON2_PARALLELISM: Int(1, 1, 16),
  ARGON2_MAX_CONCURRENCY: Int(2, 1, 64, 'password hashes computed at once; the rest queue'),

  MAIL_SERVER: OptionalStr('SMTP host; unset writes mails to the log'),
  MAIL_PORT: Int(465, 1, 65535),
  MAIL_USERNAME: OptionalStr(),
  MAIL_PASSWORD: OptionalStr(),
  MAIL_FROM: Type.String({ default: 'noreply@example.com', format: 'email' }),
  MAIL_FROM_NAME: Str('Chat App'),
  MAIL_SECURE: Type.Optional(Type.Boolean({ description: 'implicit TLS; defaults to true when MAIL_PORT is 465' })),

  VERIFICATION_TOKEN_EXPIRE_HOURS: Int(24, 1, 24, 'at most 24: a verification link is a credential'),
  RESET_TOKEN_EXPIRE_MINUTES: Int(60, 1, 60, 'at most 60: a reset link is a credential'),
  VERIFICATION_RESEND_SECONDS: Int(120, 0, 24 * 3600),
  FRONTEND_URL: Type.String({ default: 'http://localhost:3000', format: 'uri', pattern: '^https?://' }),

  CORS_ORIGINS: Str('*'),
  HOST: Str('127.0.0.1'),
  PORT: Int(8000, 0, 65535),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  RATE_LIMIT_ENABLED: Type.Boolean({ default: true }),
  TRUST_PROXY: OptionalStr('the proxies whose X-Forwarded-For gives the client address: `true` (any peer), or a comma-separated list of addresses and CIDR ranges'),
  REDIS_URL: OptionalStr('Redis for the per-IP limits, shared by every instance (redis://host:6379); unset: each process counts alone'),
  METRICS_ENABLED: Type.Boolean({ default: false, description: 'GET /metrics in the Prometheus text format' }),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'serve /metrics on this port of HOST, apart from the API; unset: on the API port' })),

  MAX_STREAMS_PER_USER: Int(3, 1, 100),
  MAX_LIVE_STREAMS: Int(2000, 1, 1_000_000, 'streams open at once on one instance; one more answers 503'),
  MAX_STREAM_SECONDS: Int(600, 5, 24 * 3600, 'a reply still streaming after this long is ended (interrupted)'),
  STREAM_PING_SECONDS: Int(15, 1, 300, 'a `: ping` comment after this long without an event'),
  REPLY_STALE_SECONDS: Int(30, 3, 3600, 'an instance whose heartbeat (one a second) is this old has stopped: its streaming replies are marked interrupted and its stream slots freed'),
  REPLY_CHECKPOINT_SECONDS: Int(5, 1, 300, 'how often the partial text of streaming replies is saved, in one write per instance: the most text a crash may lose'),
  PRESSURE_MAX_EVENT_LOOP_DELAY_MS: Int(1000, 0, 60_000, 'mean event-loop delay above which requests get 503 + Retry-After; 0 turns the check off'),
  PRESSURE_MAX_HEAP_BYTES: Int(0, 0, Number.MAX_SAFE_INTEGER, 'V8 heap in use above which requests get 503 + Retry-After; 0 (default) turns the check off'),
  PRESSURE_MAX_RSS_BYTES: Int(0, 0, Number.MAX_SAFE_INTEGER, 'resident memory above which requests get 503 + Retry-After; 0 (default) turns the check off'),
  LOGIN_MAX_FAILURES: Int(10, 1, 1000, 'failed password checks per address and client IP in 15 minutes; then 429 until the window ends'),
  LOGIN_MAX_FAILURES_PER_ACCOUNT: Int(100, 1, 100_000, 'failed password checks per address from all IPs together in an hour; then every login for it answers 429'),
  SECURITY_EVENTS_DAYS: Int(90, 1, 3650, 'how long the events of GET /users/me/events are kept; older ones are deleted hourly'),
  MAIL_RETRY_BASE_SECONDS: Int(30, 1, 3600),
  MAIL_LEASE_SECONDS: Int(90, 1, 3600, 'how long an instance holds a mail it is sending before another may take it over; above the SMTP timeouts'),

  ASSISTANT_PROVIDER: Type.Union([Type.Literal('demo'), Type.Literal('openai')], { default: 'demo' }),
  ASSISTANT_WORD_DELAY_MS: Int(100, 0, 60_000),
  ASSISTANT_BASE_URL: OptionalStr(),
  ASSISTANT_API_KEY: OptionalStr(),
  ASSISTANT_MODEL: OptionalStr(),
  ASSISTANT_CONTEXT_CHARS: Int(24_000, 100, 10_000_000, 'earlier conversation sent with each message, oldest dropped first (the system prompt and the new message always go)'),
  ASSISTANT_TIMEOUT_SECONDS: Int(60, 1, 3600, 'longest wait for the provider to answer, and between two pieces of its reply'),

  STRIPE_SECRET_KEY: OptionalStr('accepted and unused'),
  STRIPE_WEBHOOK_SECRET: OptionalStr('accepted and unused')
})

export type Config = Static<typeof EnvSchema>
