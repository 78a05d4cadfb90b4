/**
 * The measured window of a stream scenario: a warm-up, the background database traffic while
 * idle, then every stream opened at once and read to its end, with the service's RSS sampled
 * every 20 ms and the CPU of each process and the database requests counted around the window.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { ask, type Child } from './children.js'
import type { DatabaseProcesses } from './db-processes.js'
import { cpuMs, memoryProbe, rssKb, type MemoryProbe } from './probes.js'
import { settings } from './settings.js'
import { median } from './stats.js'
import { openStream, StreamPool, type StreamOutcome } from './stream-client.js'

export interface WireCounts { total: number, counts: Record<string, number> }

export interface StreamWindow {
  outcomes: StreamOutcome[]
  warmUpFailures: number
  maxOpen: number
  startedAt: Date
  wallMs: number
  rssBeforeKb: number
  rssPeakKb: number
  /** Live memory per open stream after a full GC, when (nearly) all were open at once. */
  heap: { jsKb: number, externalKb: number, open: number } | null
  cpuMs: { service: number, db: number, loadgen: number, proxy: number }
  /** Database requests during the window, and per second while idle just before it. */
  ops: { window: Record<string, number>, windowTotal: number, idlePerS: Record<string, number>, idleTotalPerS: number } | null
}

const IDLE_MS = 2000

function diff (after: WireCounts | null, before: WireCounts | null, scale = 1) {
  if (!after || !before) return null
  const counts: Record<string, number> = {}
  for (const [name, n] of Object.entries(after.counts)) {
    const d = n - (before.counts[name] ?? 0)
    if (d) counts[name] = d * scale
  }
  return { counts, total: (after.total - before.total) * scale }
}

/** The requests the proxy has counted so far; null without a proxy. */
const counted = async (proxy: Child | null) => proxy ? await ask<WireCounts>(proxy, 'counts') : null

/** Waits (at most 20 s) until a second passes with few database requests: setup (sign-up mails) is done. */
async function settle (proxy: Child | null): Promise<void> {
  if (!proxy) return
  for (let i = 0; i < 20; i++) {
    const before = await counted(proxy)
    await sleep(1000)
    const after = await counted(proxy)
    if (!before || !after || after.total - before.total <= 20) return
  }
}

export async function streamWindow (service: Child, proxy: Child | null, db: DatabaseProcesses, tokens: string[], streams: number): Promise<StreamWindow> {
  const pid = service.pid
  // Warm-up: one stream for each of a few users, so the baseline has the stream code loaded and compiled.
  const warm = new StreamPool(20)
  const warmUp = await Promise.all(tokens.slice(0, 20).map(async (token) => await openStream(service.port, token, warm)))
  warm.agent.destroy()
  await settle(proxy)

  // A full GC, then the idle traffic and the RSS baseline.
  const heapBefore = await memoryProbe(service)
  const idleStart = await counted(proxy)
  const idleAt = performance.now()
  await sleep(IDLE_MS - 300)
  const rssBeforeKb = median([rssKb(pid), await sleep(100).then(() => rssKb(pid)), await sleep(100).then(() => rssKb(pid))])
  await sleep(100)
  const idle = diff(await counted(proxy), idleStart, 1000 / (performance.now() - idleAt))

  const pool = new StreamPool(streams)
  const rss: number[] = []
  // Once nearly every stream is open and has had its first text (a full GC pauses the service, so
  // not before), and the RSS had 200 ms to be sampled, one probe tells live memory from garbage.
  let heapOpen = null as Promise<MemoryProbe | null> | null
  let heapOpenStreams = 0
  let readySince = 0
  const sampler = setInterval(() => {
    rss.push(rssKb(pid))
    if (heapOpen || pool.open < streams * 0.9 || pool.firstTexts + pool.silent < streams) return
    readySince ||= performance.now()
    if (performance.now() - readySince < 200) return
    heapOpenStreams = pool.open
    heapOpen = memoryProbe(service)
  }, 20)
  const deadline = setTimeout(() => pool.cutAll(), settings.streamDeadlineMs)
  const startedAt = new Date()
  const opsBefore = await counted(proxy)
  const before = { service: cpuMs(pid), db: db.cpuMs(), loadgen: cpuMs(process.pid), proxy: cpuMs(proxy?.pid), at: performance.now() }
  const outcomes = await Promise.all(Array.from({ length: streams }, async (_, i) =>
    await openStream(service.port, tokens[i % tokens.length]!, pool)))
  const wallMs = performance.now() - before.at
  const used = { service: cpuMs(pid) - before.service, db: db.cpuMs() - before.db, loadgen: cpuMs(process.pid) - before.loadgen, proxy: cpuMs(proxy?.pid) - before.proxy }
  const ops = diff(await counted(proxy), opsBefore)
  clearInterval(sampler)
  clearTimeout(deadline)
  pool.agent.destroy()

  const heapAfter = heapOpen ? await heapOpen : null
  const heap = heapBefore?.gc && heapAfter?.gc && heapOpenStreams > 0
    ? {
        jsKb: (heapAfter.heapUsed - heapBefore.heapUsed) / 1024 / heapOpenStreams,
        externalKb: (heapAfter.external - heapBefore.external) / 1024 / heapOpenStreams,
        open: heapOpenStreams
      }
    : null
  return {
    outcomes,
    warmUpFailures: warmUp.filter((o) => o.failure).length,
    maxOpen: pool.maxOpen,
    startedAt,
    wallMs,
    rssBeforeKb,
    rssPeakKb: Math.max(rssBeforeKb, ...rss),
    heap,
    cpuMs: used,
    ops: ops && idle ? { window: ops.counts, windowTotal: ops.total, idlePerS: idle.counts, idleTotalPerS: idle.total } : null
  }
}
