/**
 * Stream scenarios, each against a fresh service with every stream admitted (MAX_STREAMS_PER_USER
 * and MAX_LIVE_STREAMS set for it), at the original's pace (100 ms a word): 1,000 streams with the
 * demo provider, the same through the openai provider relaying a local OpenAI-protocol upstream,
 * and 4,000 with the demo provider. The service reaches the database through the counting proxy.
 * Each scenario has a database of its own, dropped afterwards, so none starts with the data of the
 * one before (on FerretDB 1.x a lookup's cost grows with the collection: see the database floor).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { MongoClient, ObjectId } from 'mongodb'
import { startChild, type Child } from './children.js'
import type { BenchContext, Phase } from './context.js'
import { logProblems, scanLog } from './log-scan.js'
import { waitReady, type BenchUser } from './service-api.js'
import { settings } from './settings.js'
import { fmt } from './stats.js'
import { streamReport } from './stream-report.js'
import { streamWindow, type StreamWindow } from './stream-window.js'
import { createUsers } from './users.js'

export interface StreamScenario {
  label: string
  provider: 'demo' | 'openai'
  streams: number
  users: number
}

export interface ScenarioResult {
  scenario: StreamScenario
  window: StreamWindow
  /** Replies stored during the window, by status. */
  stored: Record<string, number>
  problems: string[]
}

function plan (): StreamScenario[] {
  const users = (streams: number) => Math.ceil(streams / settings.streamsPerUser)
  const list: StreamScenario[] = []
  if (settings.streams) {
    list.push({ label: `${fmt(settings.streams)} streams, demo`, provider: 'demo', streams: settings.streams, users: users(settings.streams) })
    list.push({ label: `${fmt(settings.streams)} streams, openai`, provider: 'openai', streams: settings.streams, users: users(settings.streams) })
  }
  if (settings.bigStreams) list.push({ label: `${fmt(settings.bigStreams)} streams, demo`, provider: 'demo', streams: settings.bigStreams, users: users(settings.bigStreams) })
  return list
}

/** The database URL through the proxy, or null when the URL is not one plain host (the proxy reads cleartext). */
export function proxiedUrl (url: string, proxyPort: number): string {
  const proxied = new URL(url)
  proxied.host = `127.0.0.1:${proxyPort}`
  proxied.searchParams.set('directConnection', 'true')
  return proxied.toString()
}

export function proxyTarget (url: string): string | null {
  try {
    const parsed = new URL(url)
    const tls = ['tls', 'ssl'].some((name) => parsed.searchParams.get(name) === 'true')
    return parsed.protocol === 'mongodb:' && !parsed.host.includes(',') && !tls ? `${parsed.hostname}:${parsed.port || 27017}` : null
  } catch {
    return null
  }
}

/** The replies stored since the window began, by status. */
async function storedReplies (mongodbUrl: string, databaseName: string, users: BenchUser[], since: Date): Promise<Record<string, number>> {
  const client = new MongoClient(mongodbUrl)
  try {
    const stored: Record<string, number> = {}
    const statuses = await client.db(databaseName).collection('messages').aggregate<{ _id: string | null, n: number }>([
      { $match: { user_id: { $in: users.map((u) => new ObjectId(u.id)) }, role: 'assistant', created_at: { $gte: since } } },
      { $group: { _id: '$status', n: { $sum: 1 } } }
    ]).toArray()
    for (const { _id, n } of statuses) stored[String(_id)] = n
    return stored
  } finally {
    await client.close().catch(() => {})
  }
}

async function runScenario (ctx: BenchContext, scenario: StreamScenario, index: number): Promise<ScenarioResult> {
  const problems: string[] = []
  const databaseName = `${ctx.databaseName}_${index}`
  const started: Child[] = []
  const start = async (...args: Parameters<typeof startChild>) => { const child = await startChild(...args); started.push(child); return child }
  try {
    const upstream = scenario.provider === 'openai'
      ? await start('upstream', 'upstream', { BENCH_UPSTREAM_PIECES: '30', BENCH_UPSTREAM_DELAY_MS: String(settings.wordDelayMs) })
      : null
    const target = settings.countRequests ? proxyTarget(ctx.mongodbUrl) : null
    const proxy = target ? await start('wire-proxy', 'proxy', { BENCH_PROXY_TARGET: target }) : null
    const service = await start(`stream-${scenario.provider}-${scenario.streams}`, 'api', ctx.serviceEnv({
      ASSISTANT_WORD_DELAY_MS: String(settings.wordDelayMs),
      MAX_STREAMS_PER_USER: String(settings.streamsPerUser),
      MAX_LIVE_STREAMS: String(Math.max(2000, scenario.streams + 100)),
      DATABASE_NAME: databaseName,
      ...(proxy && { MONGODB_URL: proxiedUrl(ctx.mongodbUrl, proxy.port) }),
      ...(upstream && { ASSISTANT_PROVIDER: 'openai', ASSISTANT_BASE_URL: `http://127.0.0.1:${upstream.port}/v1`, ASSISTANT_MODEL: 'bench' })
    }))
    const readyAt = await waitReady(service.port)
    console.log(`# ${scenario.label}: ${scenario.users} users × ≤ ${settings.streamsPerUser}, service on :${service.port} (pid ${service.pid})` +
      `${upstream ? `, local upstream (30 deltas, ${settings.wordDelayMs} ms apart) on :${upstream.port}` : `, ASSISTANT_WORD_DELAY_MS=${settings.wordDelayMs}`}` +
      `${proxy ? `, database through the counting proxy (pid ${proxy.pid})` : `, no counting proxy (${settings.countRequests ? 'MONGODB_URL is not one cleartext host' : 'BENCH_COUNT_REQUESTS=0'})`}`)
    const t0 = performance.now()
    const { users, how } = await createUsers(service.port, ctx.mongodbUrl, databaseName, scenario.users)
    console.log(`#   ${scenario.users} users (${how}) in ${fmt((performance.now() - t0) / 1000, 1)} s`)
    const window = await streamWindow(service, proxy, ctx.db, users.map((u) => u.token), scenario.streams)
    await sleep(500)
    await service.stop()
    const log = await scanLog(service.logPath, readyAt)
    problems.push(...logProblems(`${scenario.label}: the service`, log))
    let stored: Record<string, number> = {}
    try {
      stored = await storedReplies(ctx.mongodbUrl, databaseName, users, window.startedAt)
    } catch (error) {
      problems.push(`${scenario.label}: could not count the stored replies: ${(error as Error).message}`)
    }
    if (window.warmUpFailures) problems.push(`${scenario.label}: ${window.warmUpFailures} warm-up streams failed`)
    return { scenario, window, stored, problems }
  } finally {
    await Promise.all(started.map(async (child) => await child.stop()))
    const client = new MongoClient(ctx.mongodbUrl)
    await client.db(databaseName).dropDatabase().catch(() => {})
    await client.close().catch(() => {})
  }
}

export async function streamPhase (ctx: BenchContext): Promise<Phase> {
  const results: ScenarioResult[] = []
  const skipped: string[] = []
  for (const [index, scenario] of plan().entries()) {
    // Start, users, warm-up, idle window and stop take about 20 s besides the streams.
    if (performance.now() + settings.streamDeadlineMs + 20_000 > settings.targetMs) skipped.push(scenario.label)
    else results.push(await runScenario(ctx, scenario, index))
  }
  const report = streamReport(results)
  if (skipped.length) report.problems.push(`skipped, to end within ${settings.targetMs / 1000} s: ${skipped.join(', ')}`)
  return report
}
