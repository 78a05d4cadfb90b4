/** The stream scenarios side by side: one column each, targets and verdicts where the issue sets them. */
import type { Phase } from './context.js'
import { settings, TARGETS } from './settings.js'
import { fmt, percentile, sum, table, verdict } from './stats.js'
import type { FailureKind } from './stream-client.js'
import type { ScenarioResult } from './stream-phase.js'

const KINDS: FailureKind[] = ['HTTP status', 'connection error', 'ended without done', 'done, not complete']

interface Figures {
  failures: number
  byKind: Map<FailureKind, Map<string, number>>
  texts: number
  ttfeP99: number
  perStreamKb: number
  /** Requests per stream during the window, the idle rate over the window's length taken off. */
  opsPerStream: Record<string, number> | null
  opsTotalPerStream: number
}

function figures ({ scenario, window }: ScenarioResult): Figures {
  const byKind = new Map<FailureKind, Map<string, number>>(KINDS.map((kind) => [kind, new Map()]))
  for (const { failure } of window.outcomes) {
    if (!failure) continue
    const details = byKind.get(failure.kind)!
    details.set(failure.detail, (details.get(failure.detail) ?? 0) + 1)
  }
  const texts = sum(window.outcomes.map((o) => o.texts))
  let opsPerStream: Record<string, number> | null = null
  let opsTotalPerStream = NaN
  if (window.ops) {
    const seconds = window.wallMs / 1000
    opsPerStream = {}
    for (const [name, n] of Object.entries(window.ops.window)) {
      opsPerStream[name] = Math.max(0, n - (window.ops.idlePerS[name] ?? 0) * seconds) / scenario.streams
    }
    opsTotalPerStream = Math.max(0, window.ops.windowTotal - window.ops.idleTotalPerS * seconds) / scenario.streams
  }
  return {
    failures: window.outcomes.filter((o) => o.failure).length,
    byKind,
    texts,
    ttfeP99: percentile(window.outcomes.filter((o) => o.texts > 0).map((o) => o.firstTextMs), 99),
    perStreamKb: window.maxOpen > 0 ? (window.rssPeakKb - window.rssBeforeKb) / window.maxOpen : NaN,
    opsPerStream,
    opsTotalPerStream
  }
}

const p50p99 = (values: number[]) => `${fmt(percentile(values, 50))} / ${fmt(percentile(values, 99))} ms`
const perThousand = (ms: number, texts: number) => texts > 0 ? `${fmt(ms / texts * 1000)} ms` : 'n/a'

export function streamReport (results: ScenarioResult[]): Phase {
  if (!results.length) return { lines: [], problems: [] }
  const all = results.map((r) => ({ ...r, f: figures(r) }))
  const row = (label: string, cell: (r: typeof all[number]) => string, target = '') => [label, ...all.map(cell), target]
  const rows: string[][] = [
    row('users × streams each', (r) => `${fmt(r.scenario.users)} × ≤ ${settings.streamsPerUser}`),
    row('failures', (r) => `${fmt(r.f.failures)} ${verdict(r.f.failures === TARGETS.streamFailures && r.window.outcomes.length === r.scenario.streams)}`, `${TARGETS.streamFailures}`),
    ...KINDS.map((kind) => row(`– ${kind}`, (r) => {
      const details = [...r.f.byKind.get(kind)!]
      const n = sum(details.map(([, count]) => count))
      return n ? `${fmt(n)} (${details.sort((a, b) => b[1] - a[1]).slice(0, 3).map(([what, count]) => `${what} × ${fmt(count)}`).join(', ')})` : '0'
    })),
    row('streams open at once (max)', (r) => fmt(r.window.maxOpen)),
    row('time to `start` p50 / p99', (r) => p50p99(r.window.outcomes.filter((o) => Number.isFinite(o.startMs)).map((o) => o.startMs))),
    row('time to first text event p50 / p99', (r) =>
      `${p50p99(r.window.outcomes.filter((o) => o.texts > 0).map((o) => o.firstTextMs))} ${verdict(r.f.ttfeP99 <= TARGETS.ttfeP99Ms)}`, `p99 ≤ ${fmt(TARGETS.ttfeP99Ms)} ms`),
    row('text events received', (r) => fmt(r.f.texts)),
    row('service RSS before → peak', (r) => `${fmt(r.window.rssBeforeKb / 1024, 1)} → ${fmt(r.window.rssPeakKb / 1024, 1)} MB`),
    row('RSS per open stream (peak − before, ÷ max open)', (r) => `${fmt(r.f.perStreamKb, 1)} KB ${verdict(r.f.perStreamKb <= TARGETS.rssPerStreamKb)}`, `≤ ${TARGETS.rssPerStreamKb} KB`),
    row('live memory per open stream after a full GC: JS heap + external', (r) => r.window.heap
      ? `${fmt(r.window.heap.jsKb, 1)} + ${fmt(r.window.heap.externalKb, 1)} KB`
      : 'n/a (never 90 % open with every first text in)'),
    row('service CPU per 1,000 text events', (r) => perThousand(r.window.cpuMs.service, r.f.texts)),
    row('database CPU per 1,000 text events', (r) => perThousand(r.window.cpuMs.db, r.f.texts)),
    row('database requests per stream (idle rate taken off)', (r) => fmt(r.f.opsTotalPerStream, 1)),
    row('database requests while idle', (r) => r.window.ops ? `${fmt(r.window.ops.idleTotalPerS, 1)}/s` : 'n/a'),
    row('replies stored `complete`', (r) => `${fmt(r.stored.complete ?? 0)} / ${fmt(r.scenario.streams)}`),
    row('wall time, all streams', (r) => `${fmt(r.window.wallMs / 1000, 1)} s`),
    row('CPU in the window: service / database / load generator / proxy', (r) =>
      [r.window.cpuMs.service, r.window.cpuMs.db, r.window.cpuMs.loadgen, r.window.cpuMs.proxy].map((ms) => fmt(ms / 1000, 1)).join(' / ') + ' s')
  ]
  const lines = [
    ...table([`POST /chat/stream, ${settings.wordDelayMs} ms per word`, ...all.map((r) => r.scenario.label), 'target'],
      ['---', ...all.map(() => '---:'), '---'], rows)
  ]

  // Database requests per stream by command, the largest first.
  const names = new Map<string, number>()
  for (const r of all) for (const [name, n] of Object.entries(r.f.opsPerStream ?? {})) names.set(name, Math.max(names.get(name) ?? 0, n))
  const top = [...names].filter(([, n]) => n >= 0.05).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([name]) => name)
  if (top.length) {
    lines.push('', ...table(['database requests per stream, by command', ...all.map((r) => r.scenario.label)], ['---', ...all.map(() => '---:')],
      top.map((name) => [`\`${name}\``, ...all.map((r) => fmt(r.f.opsPerStream?.[name] ?? 0, 2))])))
  }

  const problems = all.flatMap((r) => {
    const list = [...r.problems]
    const stored = sum(Object.values(r.stored))
    if ((r.stored.complete ?? 0) !== stored) list.push(`${r.scenario.label}: stored replies by status ${JSON.stringify(r.stored)}`)
    return list
  })
  return { lines, problems }
}
