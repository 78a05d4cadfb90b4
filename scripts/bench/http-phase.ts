/**
 * HTTP scenarios: autocannon in interleaved rounds (bare, route, bare, route, ...), each route's
 * req/s as a ratio to the bare route's measured right next to it, and the CPU per request.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { MongoClient, ObjectId } from 'mongodb'
import { startChild } from './children.js'
import type { BenchContext, Phase } from './context.js'
import { forgotPasswordTiming, load, type Run, type Target } from './http-load.js'
import { logProblems, scanLog } from './log-scan.js'
import { rssKb } from './probes.js'
import { api, createUser, waitReady } from './service-api.js'
import { settings, TARGETS } from './settings.js'
import { fmt, mean, median, sum, table, verdict } from './stats.js'

interface Scenario extends Target {
  key: string
  label: string
  /** The ratio to the bare route's req/s at least, or the service's CPU per request at most (µs). */
  target?: { ratio: number } | { serviceUs: number }
}

const targetText = (target: Scenario['target']) => !target ? '' : 'ratio' in target ? `≥ ${fmt(target.ratio, 2)}× bare` : `service ≤ ${target.serviceUs} µs/req`

export async function httpPhase (ctx: BenchContext): Promise<Phase> {
  const problems: string[] = []
  const bare = await startChild('bare', 'bare', { NODE_ENV: 'production' })
  const service = await startChild('service', 'api', ctx.serviceEnv({ ASSISTANT_WORD_DELAY_MS: '0' }))
  const readyAt = await waitReady(service.port)
  console.log(`# bare Fastify on :${bare.port} (pid ${bare.pid}), service on :${service.port} (pid ${service.pid})`)

  const reader = await createUser(service.port, 'reader')
  const writer = await createUser(service.port, 'writer')
  for (let i = 0; i < 5; i++) {
    const created = await api(service.port, 'POST', '/chat/', { token: reader.token, json: { title: `bench chat ${i}` } })
    if (created.status !== 200) throw new Error(`POST /chat/: ${created.status} ${JSON.stringify(created.body)}`)
  }
  // POST /chat/ adds thousands of chats per run; they are deleted after each run so that every
  // GET /chat/ run sees the same data set (on FerretDB a query's cost grows with the collection).
  const client = new MongoClient(ctx.mongodbUrl)
  const chats = client.db(ctx.databaseName).collection('chats')
  const resetData = async () => { await chats.deleteMany({ user_id: new ObjectId(writer.id) }) }

  try {
    const bareRoute: Target = { method: 'GET', path: '/' }
    const scenarios: Scenario[] = [
      { key: 'health', label: 'GET /health', method: 'GET', path: '/health', target: { ratio: TARGETS.healthRatio } },
      { key: 'me', label: 'GET /users/me', method: 'GET', path: '/users/me', token: reader.token, target: { serviceUs: TARGETS.meServiceCpuUs } },
      { key: 'list', label: 'GET /chat/ (5 chats)', method: 'GET', path: '/chat/', token: reader.token },
      { key: 'create', label: 'POST /chat/', method: 'POST', path: '/chat/', token: writer.token, body: JSON.stringify({ title: 'bench' }) }
    ]
    const runBare = async (durationS?: number) => await load(bare.port, bare.pid, ctx.db.cpuMs, bareRoute, durationS)
    const runApi = async (scenario: Scenario, durationS?: number) => {
      const run = await load(service.port, service.pid, ctx.db.cpuMs, scenario, durationS)
      await sleep(300) // let requests still in flight finish before the next run
      if (scenario.key === 'create') await resetData()
      return run
    }

    // Warm-up (JIT, connection pools), not counted.
    await runBare(1)
    for (const scenario of scenarios) await runApi(scenario, 1)

    const runs = new Map<string, Array<{ api: Run, bare: Run }>>()
    for (let round = 1; round <= settings.rounds; round++) {
      for (const scenario of scenarios) {
        const bareRun = await runBare()
        await sleep(100)
        const apiRun = await runApi(scenario)
        runs.set(scenario.key, [...(runs.get(scenario.key) ?? []), { api: apiRun, bare: bareRun }])
        console.log(`round ${round}  ${scenario.label.padEnd(20)} ${fmt(apiRun.rps).padStart(7)} req/s (bare ${fmt(bareRun.rps).padStart(6)})  ` +
          `×${fmt(apiRun.rps / bareRun.rps, 2)}  p50 ${apiRun.p50} p99 ${apiRun.p99} ms  non-2xx ${apiRun.non2xx} err ${apiRun.errors}  ` +
          `service ${fmt(apiRun.cpu.server * 1000)} µs/req`)
      }
    }
    const rssAfter = rssKb(service.pid)
    const forgot = await forgotPasswordTiming(service.port)
    await sleep(1000)
    await Promise.all([bare.stop(), service.stop()])
    const log = await scanLog(service.logPath, readyAt)

    const us = (ms: number) => fmt(ms * 1000)
    const cores = (list: Run[], db: boolean) => [
      fmt(mean(list.map((r) => r.cores.server)), 2), db && ctx.db.measured ? fmt(mean(list.map((r) => r.cores.db)), 2) : '–',
      fmt(mean(list.map((r) => r.cores.loadgen)), 2), fmt(mean(list.map((r) => r.cores.others)), 2)
    ].join(' / ')
    const allBare = [...runs.values()].flat().map((r) => r.bare)
    const rows: string[][] = [[
      'bare Fastify GET /', fmt(mean(allBare.map((r) => r.rps))), fmt(median(allBare.map((r) => r.p50)), 1),
      fmt(median(allBare.map((r) => r.p99)), 1), '1.00', String(sum(allBare.map((r) => r.non2xx + r.errors))), '', ''
    ]]
    const costRows: string[][] = [['bare Fastify GET /', us(mean(allBare.map((r) => r.cpu.server))), '–', us(mean(allBare.map((r) => r.cpu.loadgen))), cores(allBare, false)]]
    for (const scenario of scenarios) {
      const list = runs.get(scenario.key)!
      const apiRuns = list.map((r) => r.api)
      const ratios = list.map((r) => r.api.rps / r.bare.rps)
      const ratio = mean(apiRuns.map((r) => r.rps)) / mean(list.map((r) => r.bare.rps))
      const serviceUs = mean(apiRuns.map((r) => r.cpu.server)) * 1000
      const bad = sum(apiRuns.map((r) => r.non2xx + r.errors))
      if (bad > 0) {
        const codes: Record<string, number> = {}
        for (const r of apiRuns) for (const [code, count] of Object.entries(r.codes)) if (!code.startsWith('2')) codes[code] = (codes[code] ?? 0) + count
        problems.push(`${scenario.label}: non-2xx ${JSON.stringify(codes)}, connection errors ${sum(apiRuns.map((r) => r.errors))}, timeouts ${sum(apiRuns.map((r) => r.timeouts))}`)
      }
      const target = scenario.target
      const ok = bad === 0 && (!target || ('ratio' in target ? ratio >= target.ratio : serviceUs <= target.serviceUs))
      rows.push([
        scenario.label, fmt(mean(apiRuns.map((r) => r.rps))), fmt(median(apiRuns.map((r) => r.p50)), 1), fmt(median(apiRuns.map((r) => r.p99)), 1),
        `${fmt(ratio, 2)} (${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)})`, String(bad), targetText(target), target ? verdict(ok) : ''
      ])
      costRows.push([scenario.label, fmt(serviceUs), ctx.db.measured ? us(mean(apiRuns.map((r) => r.cpu.db))) : '–', us(mean(apiRuns.map((r) => r.cpu.loadgen))), cores(apiRuns, true)])
    }

    const forgotRatio = forgot.known / forgot.unknown
    problems.push(...logProblems('the service', log))
    return {
      lines: [
        ...table(['scenario', 'req/s', 'p50 ms', 'p99 ms', '× bare (min–max)', 'errors', 'target', 'result'], ['---', '---:', '---:', '---:', '---:', '---:', '---', '---'], rows),
        '',
        ...table(['where the CPU goes', 'service µs/req', 'database µs/req', 'load generator µs/req', 'cores busy (service / db / loadgen / other)'],
          ['---', '---:', '---:', '---:', '---:'], costRows),
        '',
        `service RSS after the HTTP rounds: ${fmt(rssAfter / 1024, 1)} MB`,
        '',
        `POST /auth/forgot-password, 50 + 50 interleaved, median: registered ${fmt(forgot.known, 1)} ms, unknown ${fmt(forgot.unknown, 1)} ms, ` +
          `×${fmt(forgotRatio, 2)} (target 0.80–1.25: ${verdict(forgotRatio >= 0.8 && forgotRatio <= 1.25)})`
      ],
      problems
    }
  } finally {
    await client.close().catch(() => {})
  }
}
