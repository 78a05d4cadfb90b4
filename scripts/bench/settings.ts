/** The bench's knobs (environment) and targets, read once. */
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function intSetting (name: string, fallback: number, min: number, max: number): number {
  const value = Number.parseInt(process.env[name] ?? '', 10)
  return Number.isFinite(value) ? Math.min(max, Math.max(min, value)) : fallback
}

const only = process.env.BENCH_ONLY ?? ''

export const settings = {
  rounds: intSetting('BENCH_ROUNDS', 3, 1, 10),
  durationS: intSetting('BENCH_DURATION_S', 3, 1, 30),
  connections: intSetting('BENCH_CONNECTIONS', 50, 1, 1000),
  /** The 1,000-stream scenarios (demo and openai provider), and the large one (demo); 0 skips. */
  streams: intSetting('BENCH_STREAMS', 1000, 0, 10_000),
  bigStreams: intSetting('BENCH_BIG_STREAMS', 4000, 0, 20_000),
  /** Streams per user, and the service's MAX_STREAMS_PER_USER: users = streams / this, rounded up. */
  streamsPerUser: intSetting('BENCH_STREAMS_PER_USER', 3, 1, 100),
  wordDelayMs: 100,
  /** The stream scenarios' service reaches the database through the counting proxy (scripts/bench/wire-proxy.ts). */
  countRequests: process.env.BENCH_COUNT_REQUESTS !== '0',
  /** A stream without `done` this long after the scenario began is cut and counted as a failure. */
  streamDeadlineMs: intSetting('BENCH_STREAM_DEADLINE_S', 20, 5, 120) * 1000,
  logLevel: process.env.BENCH_LOG_LEVEL || 'info',
  cpuProfDir: process.env.BENCH_CPU_PROF || '',
  logDir: process.env.BENCH_LOG_DIR || '',
  /** One part only: http, stream, floor, idle or resume. */
  only: ['http', 'stream', 'floor', 'idle', 'resume'].includes(only) ? only : '',
  /** A stream scenario that could end past this (since the start) is skipped: `npm run bench` stays under 5 minutes. */
  targetMs: 290_000,
  /** The whole run is cut off after this, whatever happens. */
  budgetMs: 330_000,
  secret: randomBytes(32).toString('hex'),
  password: 'bench password 0123456789'
}

export const TARGETS = {
  healthRatio: 0.6,
  meServiceCpuUs: 300,
  streamFailures: 0,
  ttfeP99Ms: 1000,
  rssPerStreamKb: 25
}
