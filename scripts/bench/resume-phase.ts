/**
 * How fresh a resumed stream is: a resumable send (with `client_message_id`) streams on instance A
 * and stays open; after its third text event a second client resumes the same reply with
 * `Last-Event-ID`, on A itself (read from memory) and on another instance B (read from the
 * database). For every text event id both received, the lag is when the follower had it minus when
 * A's own client had it. Both services are children on the bench's database, 100 ms a word, reaching
 * it through the counting proxy: database requests per send and its resume, the idle rate taken off.
 */
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { ask, startChild, type Child } from './children.js'
import type { BenchContext, Phase } from './context.js'
import { createUser, waitReady, type BenchUser } from './service-api.js'
import { settings } from './settings.js'
import { memoryProbe } from './probes.js'
import { fmt, percentile } from './stats.js'
import { proxiedUrl, proxyTarget } from './stream-phase.js'
import type { WireCounts } from './stream-window.js'

const RESUMES = 20
const AT_ONCE = 5
/** For the memory of followers: slow replies (`[slow]`, a word a second) on A, each followed this many times from B. */
const SLOW_REPLIES = 10
const FOLLOWERS_EACH = 50

/** Opens an event stream and calls `onId(id, ms)` for each text event's id, as it arrives; resolves at the end. */
function follow (port: number, method: 'GET' | 'POST', path: string, token: string, body: string | undefined, lastId: string | undefined,
  onId: (id: string, at: number) => void): Promise<void> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...(lastId && { 'last-event-id': lastId }) }
    if (body) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) })
    const request = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (response) => {
      let buffer = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        buffer += chunk
        let end
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const id = /^id: (\d+)$/m.exec(frame)?.[1]
          if (id && !/^event:/m.test(frame)) onId(id, performance.now())
          const start = /^event: start\ndata: (.*)$/m.exec(frame)?.[1]
          if (start) onId(`start ${start}`, performance.now())
        }
      })
      response.on('close', () => resolve())
    })
    request.on('error', () => resolve())
    request.end(body)
  })
}

/** One resumable send on A, followed from `follower` after its third text event: the lag of each id the follower got. */
async function oneResume (a: Child, follower: Child, user: BenchUser, n: number): Promise<number[]> {
  const seen = new Map<string, number>()
  let texts = 0
  let startData = ''
  let resumed: Promise<void> | undefined
  const lags: number[] = []
  const body = JSON.stringify({ message: 'Hello from the benchmark, please stream a reply.', client_message_id: `resume-${n}-${Date.now()}` })
  await follow(a.port, 'POST', '/chat/stream', user.token, body, undefined, (id, at) => {
    if (id.startsWith('start ')) { startData = id.slice(6); return }
    seen.set(id, at)
    if (++texts !== 3) return
    const { chat_id: chatId, message_id: messageId } = JSON.parse(startData) as { chat_id: string, message_id: string }
    resumed = follow(follower.port, 'GET', `/chat/${chatId}/stream?message_id=${messageId}`, user.token, undefined, id, (got, gotAt) => {
      const original = seen.get(got)
      if (original !== undefined) lags.push(gotAt - original)
    })
  })
  await resumed
  return lags
}

/** Database requests through the counting proxy so far (null without one). */
async function requests (proxy: Child | null) {
  return proxy ? (await ask<WireCounts>(proxy, 'counts'))?.total ?? null : null
}

/** The lags, and the database requests per send and its resume, with the two idle services' rate taken off. */
async function measure (a: Child, follower: Child, users: BenchUser[], proxy: Child | null, idlePerMs: number | null) {
  const lags: number[] = []
  const before = { requests: await requests(proxy), at: performance.now() }
  for (let i = 0; i < RESUMES; i += AT_ONCE) {
    const batch = await Promise.all(Array.from({ length: AT_ONCE }, (_, j) => oneResume(a, follower, users[j]!, i + j)))
    lags.push(...batch.flat())
  }
  const after = await requests(proxy)
  const perSend = after !== null && before.requests !== null && idlePerMs !== null
    ? (after - before.requests - idlePerMs * (performance.now() - before.at)) / RESUMES
    : null
  return { lags, perSend }
}

/** Memory of B per follower: SLOW_REPLIES slow replies on A, each followed FOLLOWERS_EACH times from B, after a full GC each time. */
async function followerMemory (a: Child, b: Child, user: BenchUser) {
  const sends: http.ClientRequest[] = []
  const followers: http.ClientRequest[] = []
  const open = (port: number, method: string, path: string, body?: string, onStart?: (data: string) => void) => {
    const headers: Record<string, string> = { authorization: `Bearer ${user.token}` }
    if (body) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) })
    const request = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (response) => {
      response.setEncoding('utf8')
      let buffer = ''
      response.on('data', (chunk: string) => {
        buffer += chunk
        const start = /^event: start\ndata: (.*)$/m.exec(buffer)?.[1]
        if (start && onStart) { onStart(start); onStart = undefined }
      })
    })
    request.on('error', () => {})
    request.end(body)
    return request
  }
  const before = await memoryProbe(b)
  const started = await Promise.all(Array.from({ length: SLOW_REPLIES }, (_, i) => new Promise<{ chat_id: string, message_id: string }>((resolve) => {
    sends.push(open(a.port, 'POST', '/chat/stream', JSON.stringify({ message: `[slow] memory ${i}`, client_message_id: `memory-${i}-${Date.now()}` }), (data) => resolve(JSON.parse(data))))
  })))
  let opened = 0
  await Promise.all(started.flatMap(({ chat_id: chatId, message_id: messageId }) => Array.from({ length: FOLLOWERS_EACH }, () => new Promise<void>((resolve) => {
    followers.push(open(b.port, 'GET', `/chat/${chatId}/stream?message_id=${messageId}`, undefined, () => { opened++; resolve() }))
  }))))
  await sleep(1000)
  const during = await memoryProbe(b)
  for (const request of [...followers, ...sends]) request.destroy()
  if (!before || !during) return null
  return { followers: opened, rssKb: (during.rss - before.rss) / 1024 / opened, liveKb: (during.heapUsed + during.external - before.heapUsed - before.external) / 1024 / opened }
}

export async function resumePhase (ctx: BenchContext): Promise<Phase> {
  const started: Child[] = []
  try {
    const target = proxyTarget(ctx.mongodbUrl)
    const proxy = target ? await startChild('resume-proxy', 'proxy', { BENCH_PROXY_TARGET: target }) : null
    if (proxy) started.push(proxy)
    const env = ctx.serviceEnv({
      ASSISTANT_WORD_DELAY_MS: String(settings.wordDelayMs),
      MAX_STREAMS_PER_USER: String(AT_ONCE * 2),
      MAX_LIVE_STREAMS: String(SLOW_REPLIES * FOLLOWERS_EACH + 100),
      ...(proxy && { MONGODB_URL: proxiedUrl(ctx.mongodbUrl, proxy.port) })
    })
    const a = await startChild('resume-a', 'api', env)
    started.push(a)
    const b = await startChild('resume-b', 'api', env)
    started.push(b)
    await Promise.all([waitReady(a.port), waitReady(b.port)])
    const users = await Promise.all(Array.from({ length: AT_ONCE }, (_, i) => createUser(a.port, `resume${i}`)))
    const idleFrom = { requests: await requests(proxy), at: performance.now() }
    await sleep(3000)
    const idleTo = await requests(proxy)
    const idlePerMs = idleTo !== null && idleFrom.requests !== null ? (idleTo - idleFrom.requests) / (performance.now() - idleFrom.at) : null
    const here = await measure(a, a, users, proxy, idlePerMs)
    const elsewhere = await measure(a, b, users, proxy, idlePerMs)
    const memory = await followerMemory(a, b, users[0]!)
    const row = (label: string, { lags, perSend }: { lags: number[], perSend: number | null }) =>
      `| ${label} | ${lags.length} | ${fmt(percentile(lags, 50), 0)} | ${fmt(percentile(lags, 90), 0)} | ${fmt(percentile(lags, 99), 0)} | ${perSend === null ? 'n/a' : fmt(perSend, 1)} |`
    return {
      lines: [
        `Resumed streams (${RESUMES} resumable sends on instance A at ${settings.wordDelayMs} ms a word, each resumed with Last-Event-ID after its third text event, ${AT_ONCE} at a time): ` +
          'lag of the resumed stream behind the original one, per text event id both received.',
        '',
        '| resumed on | events compared | p50 ms | p90 ms | p99 ms | database requests per send and its resume |',
        '|---|---:|---:|---:|---:|---:|',
        row('A, the instance streaming the reply (memory)', here),
        row('B, another instance (database)', elsewhere),
        '',
        memory
          ? `Memory of B per follower, ${memory.followers} followers of ${SLOW_REPLIES} replies streaming on A: ${fmt(memory.rssKb, 1)} KB RSS, ` +
            `${fmt(memory.liveKb, 1)} KB live heap + external after a full GC (target for a stream: RSS ≤ 25 KB).`
          : 'Memory of followers: not measured (the service did not answer the memory probe).'
      ],
      problems: here.lags.length === 0 || elsewhere.lags.length === 0 ? ['resume: a resumed stream received no text event the original had'] : []
    }
  } finally {
    await Promise.all(started.map((child) => child.stop()))
  }
}
