/** One autocannon run with the CPU each process spent on it, and the forgot-password timing. */
import { randomBytes } from 'node:crypto'
import autocannon from 'autocannon'
import { cpuMs, systemBusyMs } from './probes.js'
import { api, createUser } from './service-api.js'
import { settings } from './settings.js'
import { median } from './stats.js'

export interface Target {
  method: 'GET' | 'POST'
  path: string
  token?: string
  body?: string
}

export interface Run {
  rps: number
  p50: number
  p99: number
  non2xx: number
  errors: number
  timeouts: number
  codes: Record<string, number>
  /** CPU ms per request: the server under load, the database, this process (load generator). */
  cpu: { server: number, db: number, loadgen: number }
  /** Cores busy during the run, same three, and every other process on the machine. */
  cores: { server: number, db: number, loadgen: number, others: number }
}

export async function load (port: number, serverPid: number, dbCpuMs: () => number, target: Target, durationS = settings.durationS): Promise<Run> {
  const headers: Record<string, string> = {}
  if (target.token) headers.authorization = `Bearer ${target.token}`
  if (target.body) headers['content-type'] = 'application/json'
  const before = { server: cpuMs(serverPid), db: dbCpuMs(), loadgen: cpuMs(process.pid), system: systemBusyMs(), at: performance.now() }
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${target.path}`,
    method: target.method,
    headers,
    body: target.body,
    connections: settings.connections,
    duration: durationS,
    timeout: 10
  })
  const wallMs = performance.now() - before.at
  const used = { server: cpuMs(serverPid) - before.server, db: dbCpuMs() - before.db, loadgen: cpuMs(process.pid) - before.loadgen }
  const others = Math.max(0, systemBusyMs() - before.system - used.server - used.db - used.loadgen)
  const requests = Math.max(1, result.requests.total)
  const codes: Record<string, number> = {}
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) codes[code] = stat.count ?? 0
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    codes,
    cpu: { server: used.server / requests, db: used.db / requests, loadgen: used.loadgen / requests },
    cores: { server: used.server / wallMs, db: used.db / wallMs, loadgen: used.loadgen / wallMs, others: others / wallMs }
  }
}

/**
 * Median latency of POST /auth/forgot-password for registered and unknown addresses, one request
 * at a time, interleaved. The contract asks for similar timing; SECURITY.md item 28 for 20 %.
 */
export async function forgotPasswordTiming (port: number, pairs = 50): Promise<{ known: number, unknown: number }> {
  const known: string[] = []
  for (let i = 0; i < pairs; i++) known.push((await createUser(port, `forgot${i}`)).email)
  const times = { known: [] as number[], unknown: [] as number[] }
  for (let i = 0; i < pairs; i++) {
    const pair = [['known', known[i]!], ['unknown', `bench-nobody-${randomBytes(4).toString('hex')}@example.com`]] as const
    // Alternating which goes first, so neither always follows the other.
    for (const [kind, email] of i % 2 ? [...pair].reverse() : pair) {
      const start = performance.now()
      const answer = await api(port, 'POST', '/auth/forgot-password', { json: { email } })
      times[kind].push(performance.now() - start)
      if (answer.status !== 200) throw new Error(`forgot-password: ${answer.status} ${JSON.stringify(answer.body)}`)
    }
  }
  return { known: median(times.known), unknown: median(times.unknown) }
}
