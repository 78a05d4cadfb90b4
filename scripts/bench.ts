/**
 * `npm run bench`: measures the service against a bare Fastify route in the same run (DEVELOPERS:
 * "Speed is measured, not asserted"). Prints ratios and PASS/MISS per target, and always exits 0
 * once it has measured (1 only when it could not run).
 *
 * - FerretDB: MONGODB_URL when set, otherwise an embedded one (over PostgreSQL with fsync on, when the
 *   machine has it) with a throwaway data folder; its CPU counts FerretDB and every PostgreSQL process.
 * - The service and a bare Fastify (one GET route) each run in their own child process
 *   (scripts/bench-server.ts) on 127.0.0.1, so the load generator never shares their event loop and
 *   the service's RSS can be read from /proc/<pid>/status.
 * - HTTP: autocannon, interleaved rounds (bare, route, bare, route, ...), ratio to the bare route's
 *   req/s measured right next to it.
 * - Streaming: 1,000 concurrent POST /chat/stream (10 users × 100) against a service at the
 *   original pace (ASSISTANT_WORD_DELAY_MS=100), then the same with the openai provider relaying a
 *   local OpenAI-protocol upstream (another child) at the same pace: failures, time to first event,
 *   RSS per open stream, service CPU per 1,000 relayed events.
 *
 * Knobs (environment): BENCH_ROUNDS (3), BENCH_DURATION_S (5), BENCH_CONNECTIONS (50),
 * BENCH_STREAM_USERS (10), BENCH_STREAMS_PER_USER (100), BENCH_LOG_LEVEL (the service's log level,
 * default info as in production; logs go to a temporary file that is scanned for errors),
 * BENCH_CPU_PROF=<dir> (run the service children with `node --cpu-prof` into <dir>),
 * BENCH_LOG_DIR=<dir> (keep the service logs there), BENCH_ONLY=http|stream (one part only).
 *
 * Next to req/s it prints the CPU each process spent per request (service, database, load
 * generator, from /proc/<pid>/stat), which shows where a route's cost is.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { MongoClient, ObjectId } from 'mongodb'
import pLimit from 'p-limit'
import { startFerretdb, type RunningFerretdb } from './ferretdb.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const serverEntry = join(root, 'scripts', 'bench-server.ts')

function intSetting (name: string, fallback: number, min: number, max: number): number {
  const value = Number.parseInt(process.env[name] ?? '', 10)
  return Number.isFinite(value) ? Math.min(max, Math.max(min, value)) : fallback
}

const ROUNDS = intSetting('BENCH_ROUNDS', 3, 1, 10)
const DURATION_S = intSetting('BENCH_DURATION_S', 5, 1, 30)
const CONNECTIONS = intSetting('BENCH_CONNECTIONS', 50, 1, 1000)
const STREAM_USERS = intSetting('BENCH_STREAM_USERS', 10, 1, 1000)
const STREAMS_PER_USER = intSetting('BENCH_STREAMS_PER_USER', 100, 1, 100)
const TOTAL_STREAMS = STREAM_USERS * STREAMS_PER_USER
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL || 'info'
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF || ''
const LOG_DIR = process.env.BENCH_LOG_DIR || ''
const ONLY = process.env.BENCH_ONLY === 'http' || process.env.BENCH_ONLY === 'stream' ? process.env.BENCH_ONLY : ''
const CLOCK_TICKS = 100
/** The whole run is cut off after this, whatever happens. */
const BUDGET_MS = 420_000
const SECRET = randomBytes(32).toString('hex')
const PASSWORD = 'bench password 0123456789'

const TARGETS = {
  health: 0.90,
  me: 0.20,
  streamFailures: 0,
  rssPerStreamKb: 25
}

// ---------------------------------------------------------------------------------------------
// Child processes and cleanup

interface Child {
  name: string
  proc: ChildProcess
  port: number
  logPath?: string
  stop (): Promise<void>
}

const children = new Set<Child>()
let ferretdb: RunningFerretdb | null = null
let workDir = ''
let cleaningUp: Promise<void> | null = null

async function cleanup (): Promise<void> {
  cleaningUp ??= (async () => {
    await Promise.allSettled([...children].map(async (child) => await child.stop()))
    if (ferretdb) await ferretdb.stop().catch(() => {})
    if (workDir) rmSync(workDir, { recursive: true, force: true })
  })()
  await cleaningUp
}

// Last resort: no child outlives the script, even when it dies without running cleanup.
process.on('exit', () => {
  for (const child of children) if (child.proc.exitCode === null) child.proc.kill('SIGKILL')
  ferretdb?.kill()
})
// Ctrl-C reaches this process twice (from the terminal and relayed by the tsx wrapper): the first
// one starts the cleanup, later ones are ignored so they cannot cut it short (it is time-bounded).
let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return
    interrupted = true
    console.error(`\n${signal}: stopping the children...`)
    cleanup().then(() => process.exit(130), () => process.exit(130))
  })
}
const watchdog = setTimeout(() => {
  console.error(`\nThe benchmark ran past its ${BUDGET_MS / 1000} s budget; stopping.`)
  cleanup().then(() => process.exit(1), () => process.exit(1))
}, BUDGET_MS)
watchdog.unref()

function baseEnv (): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[name]) env[name] = process.env[name]!
  return env
}

async function startChild (name: string, mode: 'bare' | 'api' | 'upstream', settings: Record<string, string>): Promise<Child> {
  const logPath = mode === 'api' ? join(LOG_DIR || workDir, `${name}.log`) : undefined
  const out = logPath ? openSync(logPath, 'a') : 'ignore'
  const args = ['--import', 'tsx', serverEntry, mode]
  if (mode === 'api') args.unshift('--expose-gc') // only used when the bench asks for a memory probe
  if (CPU_PROF_DIR && mode === 'api') args.unshift('--cpu-prof', `--cpu-prof-dir=${join(CPU_PROF_DIR, name)}`)
  const proc = spawn(process.execPath, args, {
    cwd: root,
    // `--import tsx` is not a preload @fastify/autoload recognises; this tells it .ts plugins load.
    env: { ...baseEnv(), FASTIFY_AUTOLOAD_TYPESCRIPT: '1', ...settings },
    stdio: ['ignore', out, 'inherit', 'ipc']
  })
  if (typeof out === 'number') closeSync(out)
  proc.on('error', (error) => console.error(`${name}: ${error.message}`))
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  let stopping: Promise<void> | null = null
  const child: Child = {
    name,
    proc,
    port: 0,
    logPath,
    async stop () {
      stopping ??= (async () => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
        const killed = sleep(8000, 'timeout')
        if (await Promise.race([exited, killed]) === 'timeout') {
          proc.kill('SIGKILL')
          await exited
        }
        children.delete(child)
      })()
      await stopping
    }
  }
  children.add(child)
  child.port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000)
    const onMessage = (message: { type?: string, port?: number }) => {
      if (message?.type !== 'listening') return
      proc.off('message', onMessage)
      clearTimeout(timer)
      resolve(message.port ?? 0)
    }
    proc.on('message', onMessage)
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited with ${code} before listening`)) })
  })
  if (!child.port) throw new Error(`${name} reported no port`)
  return child
}

function rssKb (pid: number): number {
  const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match ? Number(match[1]) : 0
}

interface MemoryProbe { gc: boolean, rss: number, heapUsed: number, external: number, arrayBuffers: number }

/** The child's memory after a full GC (bench-server.ts answers over IPC); null if it does not answer in 5 s. */
async function memoryProbe (child: Child): Promise<MemoryProbe | null> {
  return await new Promise((resolve) => {
    const timer = setTimeout(() => { child.proc.off('message', onMessage); resolve(null) }, 5000)
    const onMessage = (message: MemoryProbe & { type?: string }) => {
      if (message?.type !== 'memory') return
      clearTimeout(timer)
      child.proc.off('message', onMessage)
      resolve(message)
    }
    child.proc.on('message', onMessage)
    try {
      child.proc.send({ type: 'memory' })
    } catch {
      clearTimeout(timer)
      child.proc.off('message', onMessage)
      resolve(null)
    }
  })
}

/** Busy CPU time of the whole machine so far (all CPUs, not idle or iowait), in ms. */
function systemBusyMs (): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
  // user nice system idle iowait irq softirq steal (guest time is already inside user and nice)
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = ticks.reduce((a, b) => a + b, 0)
  return (total - (ticks[3] ?? 0) - (ticks[4] ?? 0)) * 1000 / CLOCK_TICKS
}

/** CPU time (user + system) a process has used so far, in ms; 0 when it cannot be read. */
function cpuMs (pid: number | undefined): number {
  if (pid === undefined) return 0
  if (pid === process.pid) {
    const usage = process.cpuUsage()
    return (usage.user + usage.system) / 1000
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS
  } catch {
    return 0
  }
}

/**
 * Error-level lines (pino level ≥ 50) of a service log, grouped by message (numbers masked). Lines
 * from before `since` (the bench's own GET /health/ready polls while the service starts) are only
 * counted in `beforeReady`.
 */
async function logErrors (path: string | undefined, since: number): Promise<{ count: number, beforeReady: number, kinds: Map<string, number> }> {
  const result = { count: 0, beforeReady: 0, kinds: new Map<string, number>() }
  if (!path) return result
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity })
  for await (const line of lines) {
    if (!/"level":(5|6)\d/.test(line)) continue
    let kind: string
    try {
      const entry = JSON.parse(line) as { msg?: string, time?: string, err?: { message?: string } }
      if (entry.time && Date.parse(entry.time) < since) {
        result.beforeReady++
        continue
      }
      kind = `${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message}` : ''}`
    } catch {
      kind = line
    }
    result.count++
    kind = kind.replace(/\d+/g, 'N').slice(0, 160)
    result.kinds.set(kind, (result.kinds.get(kind) ?? 0) + 1)
  }
  return result
}

// ---------------------------------------------------------------------------------------------
// API helpers (setup traffic only)

async function api (port: number, method: string, path: string, options: { json?: unknown, form?: Record<string, string>, token?: string } = {}) {
  const headers: Record<string, string> = {}
  let body: string | undefined
  if (options.json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(options.json) }
  if (options.form) { headers['content-type'] = 'application/x-www-form-urlencoded'; body = new URLSearchParams(options.form).toString() }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, body, signal: AbortSignal.timeout(15_000) })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) as Record<string, unknown> : {} }
}

/** Waits (at most 30 s) until GET /health/ready answers 200: the service holds requests back with 503 until its database setup is done. */
async function waitReady (port: number): Promise<number> {
  const deadline = Date.now() + 30_000
  let last = 0
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(2000) })
      await response.arrayBuffer()
      last = response.status
      if (response.ok) return Date.now()
    } catch {}
    await sleep(100)
  }
  throw new Error(`the service on :${port} was not ready within 30 s (last GET /health/ready: ${last})`)
}

async function createUser (port: number, label: string): Promise<{ token: string, id: string, email: string }> {
  const email = `bench-${label}-${randomBytes(4).toString('hex')}@example.com`
  const registered = await api(port, 'POST', '/auth/register', { json: { email, password: PASSWORD } })
  if (registered.status !== 201) throw new Error(`register ${email}: ${registered.status} ${JSON.stringify(registered.body)}`)
  const login = await api(port, 'POST', '/auth/login', { form: { username: email, password: PASSWORD } })
  if (login.status !== 200 || typeof login.body.access_token !== 'string') throw new Error(`login ${email}: ${login.status} ${JSON.stringify(login.body)}`)
  return { token: login.body.access_token, id: String(registered.body.id), email }
}

/**
 * Median latency of POST /auth/forgot-password for registered and unknown addresses, one request
 * at a time, interleaved. The contract asks for similar timing; SECURITY.md item 28 for 20 %.
 */
async function forgotPasswordTiming (port: number, pairs = 50): Promise<{ known: number, unknown: number }> {
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

// ---------------------------------------------------------------------------------------------
// HTTP scenarios

interface Scenario {
  key: string
  label: string
  method: 'GET' | 'POST'
  path: string
  token?: string
  body?: string
  target?: number
}

interface Run {
  rps: number
  p50: number
  p99: number
  non2xx: number
  errors: number
  timeouts: number
  codes: Record<string, number>
  requests: number
  /** CPU ms per request: the server under load, the database, this process (load generator). */
  cpu: { server: number, db: number, loadgen: number }
  /** Cores busy during the run, same three, and every other process on the machine. */
  cores: { server: number, db: number, loadgen: number, others: number }
}

/** CPU of the embedded database (FerretDB and its PostgreSQL processes); 0 with MONGODB_URL. */
const dbCpuMs = () => ferretdb?.cpuMs() ?? 0

async function load (port: number, serverPid: number, scenario: Pick<Scenario, 'method' | 'path' | 'token' | 'body'>, durationS = DURATION_S): Promise<Run> {
  const headers: Record<string, string> = {}
  if (scenario.token) headers.authorization = `Bearer ${scenario.token}`
  if (scenario.body) headers['content-type'] = 'application/json'
  const before = { server: cpuMs(serverPid), db: dbCpuMs(), loadgen: cpuMs(process.pid), system: systemBusyMs(), at: performance.now() }
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${scenario.path}`,
    method: scenario.method,
    headers,
    body: scenario.body,
    connections: CONNECTIONS,
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
    requests: result.requests.total,
    cpu: { server: used.server / requests, db: used.db / requests, loadgen: used.loadgen / requests },
    cores: { server: used.server / wallMs, db: used.db / wallMs, loadgen: used.loadgen / wallMs, others: others / wallMs }
  }
}

const mean = (values: number[]) => values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0
const median = (values: number[]) => percentile(values, 50)
function percentile (values: number[], p: number): number {
  if (!values.length) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}
const fmt = (value: number, digits = 0) => Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a'

// ---------------------------------------------------------------------------------------------
// Streaming scenario

interface StreamResult {
  ok: boolean
  status: number
  events: number
  done: boolean
  errorEvent: boolean
  headersMs: number
  firstEventMs: number
  reason?: string
}

function openStream (port: number, token: string, agent: http.Agent, tracker: { open: number, maxOpen: number }, requests: Set<http.ClientRequest>): Promise<StreamResult> {
  return new Promise((resolve) => {
    const started = performance.now()
    const body = JSON.stringify({ message: 'Hello from the benchmark, please stream a reply.' })
    const result: StreamResult = { ok: false, status: 0, events: 0, done: false, errorEvent: false, headersMs: NaN, firstEventMs: NaN }
    let settled = false
    let opened = false
    const finish = (reason?: string) => {
      if (settled) return
      settled = true
      requests.delete(request)
      if (opened) tracker.open--
      result.ok = !reason && result.status === 200 && result.events > 0
      if (!result.ok) result.reason = reason ?? (result.status !== 200 ? `HTTP ${result.status}` : 'no event')
      resolve(result)
    }
    const request = http.request({
      host: '127.0.0.1',
      port,
      path: '/chat/stream',
      method: 'POST',
      agent,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
    }, (response) => {
      result.status = response.statusCode ?? 0
      result.headersMs = performance.now() - started
      if (result.status === 200) {
        opened = true
        tracker.open++
        tracker.maxOpen = Math.max(tracker.maxOpen, tracker.open)
      }
      response.setEncoding('utf8')
      let buffer = ''
      response.on('data', (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          if (!frame.split('\n').some((line) => line.startsWith('data:'))) continue
          if (result.events === 0) result.firstEventMs = performance.now() - started
          result.events++
          if (/^event: done$/m.test(frame)) result.done = true
          if (/^event: error$/m.test(frame)) result.errorEvent = true
        }
      })
      response.on('end', () => finish())
      response.on('error', (error) => finish(error.message))
      response.on('close', () => finish(response.complete ? undefined : 'closed before the end'))
    })
    requests.add(request)
    request.setTimeout(30_000, () => request.destroy(new Error('timed out')))
    request.on('error', (error) => finish(error.message))
    request.end(body)
  })
}

interface StreamReport {
  streams: number
  failures: number
  reasons: Record<string, number>
  done: number
  errorEvents: number
  events: number
  ttfeP50: number
  ttfeP99: number
  headersP50: number
  headersP99: number
  maxOpen: number
  /** Live memory after a full GC, before the streams and with (nearly) all of them open. */
  heapBefore: MemoryProbe | null
  heapOpen: MemoryProbe | null
  heapOpenStreams: number
  rssBeforeKb: number
  rssPeakKb: number
  perStreamKb: number
  wallMs: number
  serviceCpuMs: number
  dbCpuMs: number
}

async function streamScenario (service: Child, tokens: string[]): Promise<StreamReport> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: TOTAL_STREAMS + 100 })
  const requests = new Set<http.ClientRequest>()
  const pid = service.proc.pid!

  // Warm-up: one stream per user, so the baseline has the stream code loaded and compiled.
  const warm = { open: 0, maxOpen: 0 }
  await Promise.all(tokens.map(async (token) => await openStream(service.port, token, agent, warm, requests)))
  // A full GC first, so the baseline holds no garbage of the warm-up.
  const heapBefore = await memoryProbe(service)
  await sleep(1000)
  const before = median([rssKb(pid), await sleep(100).then(() => rssKb(pid)), await sleep(100).then(() => rssKb(pid))])

  const tracker = { open: 0, maxOpen: 0 }
  const samples: Array<{ rss: number, open: number }> = []
  // Once (nearly: 95 %) every stream is open and the RSS had 200 ms to be sampled, one more probe (full
  // GC) tells live memory from garbage. It comes after the RSS samples it could lower.
  let heapOpen: Promise<MemoryProbe | null> | null = null
  let heapOpenStreams = 0
  let allOpenSince = 0
  const sampler = setInterval(() => {
    samples.push({ rss: rssKb(pid), open: tracker.open })
    if (heapOpen || tracker.open < TOTAL_STREAMS * 0.95) return
    allOpenSince ||= performance.now()
    if (performance.now() - allOpenSince < 200) return
    heapOpenStreams = tracker.open
    heapOpen = memoryProbe(service)
  }, 20)
  const deadline = setTimeout(() => { for (const request of requests) request.destroy(new Error('stream phase deadline')) }, 60_000)
  const started = performance.now()
  const cpuBefore = { service: cpuMs(pid), db: dbCpuMs() }
  const results = await Promise.all(Array.from({ length: TOTAL_STREAMS }, async (_, i) =>
    await openStream(service.port, tokens[i % tokens.length]!, agent, tracker, requests)))
  const wallMs = performance.now() - started
  const cpuAfter = { service: cpuMs(pid), db: dbCpuMs() }
  clearInterval(sampler)
  clearTimeout(deadline)
  agent.destroy()

  // Peak RSS while every stream was open (or, if they never all were, while the most were).
  const allOpen = samples.filter((s) => s.open >= tracker.maxOpen)
  const peak = Math.max(...(allOpen.length ? allOpen : samples).map((s) => s.rss))
  const reasons: Record<string, number> = {}
  for (const r of results) if (!r.ok) reasons[r.reason!] = (reasons[r.reason!] ?? 0) + 1
  const firsts = results.filter((r) => r.events > 0).map((r) => r.firstEventMs)
  const headers = results.filter((r) => r.status > 0).map((r) => r.headersMs)
  return {
    streams: results.length,
    failures: results.filter((r) => !r.ok).length,
    reasons,
    done: results.filter((r) => r.done).length,
    errorEvents: results.filter((r) => r.errorEvent).length,
    events: results.reduce((sum, r) => sum + r.events, 0),
    ttfeP50: percentile(firsts, 50),
    ttfeP99: percentile(firsts, 99),
    headersP50: percentile(headers, 50),
    headersP99: percentile(headers, 99),
    heapBefore,
    heapOpen: heapOpen ? await heapOpen : null,
    heapOpenStreams,
    maxOpen: tracker.maxOpen,
    rssBeforeKb: before,
    rssPeakKb: peak,
    perStreamKb: tracker.maxOpen > 0 ? (peak - before) / tracker.maxOpen : NaN,
    wallMs,
    serviceCpuMs: cpuAfter.service - cpuBefore.service,
    dbCpuMs: cpuAfter.db - cpuBefore.db
  }
}

// ---------------------------------------------------------------------------------------------

const verdict = (ok: boolean) => ok ? 'PASS' : 'MISS'
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0)

interface Phase {
  lines: string[]
  problems: string[]
}

type ServiceSettings = (delayMs: number) => Record<string, string>

async function httpPhase (settings: ServiceSettings, mongodbUrl: string, databaseName: string): Promise<Phase> {
  const lines: string[] = []
  const problems: string[] = []
  const bare = await startChild('bare', 'bare', { NODE_ENV: 'production' })
  const service = await startChild('service', 'api', settings(0))
  const servicePid = service.proc.pid!
  const readyAt = await waitReady(service.port)
  console.log(`# bare Fastify on :${bare.port} (pid ${bare.proc.pid}), service on :${service.port} (pid ${servicePid})`)

  const reader = await createUser(service.port, 'reader')
  const writer = await createUser(service.port, 'writer')
  for (let i = 0; i < 5; i++) {
    const created = await api(service.port, 'POST', '/chat/', { token: reader.token, json: { title: `bench chat ${i}` } })
    if (created.status !== 201) throw new Error(`POST /chat/: ${created.status} ${JSON.stringify(created.body)}`)
  }
  // POST /chat/ adds thousands of chats per run; they are deleted after each run so that every
  // GET /chat/ run sees the same data set (on FerretDB a query's cost grows with the collection).
  const client = new MongoClient(mongodbUrl)
  const chats = client.db(databaseName).collection('chats')
  const writerId = new ObjectId(writer.id)
  const resetData = async () => { await chats.deleteMany({ user_id: writerId }) }

  try {
    const bareRoute: Scenario = { key: 'bare', label: 'bare Fastify GET /', method: 'GET', path: '/' }
    const scenarios: Scenario[] = [
      { key: 'health', label: 'GET /health', method: 'GET', path: '/health', target: TARGETS.health },
      { key: 'me', label: 'GET /users/me', method: 'GET', path: '/users/me', token: reader.token, target: TARGETS.me },
      { key: 'list', label: 'GET /chat/ (5 chats)', method: 'GET', path: '/chat/', token: reader.token },
      { key: 'create', label: 'POST /chat/', method: 'POST', path: '/chat/', token: writer.token, body: JSON.stringify({ title: 'bench' }) }
    ]
    const runApi = async (scenario: Scenario, durationS?: number) => {
      const run = await load(service.port, servicePid, scenario, durationS)
      await sleep(300) // let requests still in flight finish before the next run
      if (scenario.key === 'create') await resetData()
      return run
    }

    // Warm-up (JIT, connection pools), not counted.
    await load(bare.port, bare.proc.pid!, bareRoute, 1)
    for (const scenario of scenarios) await runApi(scenario, 1)

    const runs = new Map<string, Array<{ api: Run, bare: Run }>>()
    for (let round = 1; round <= ROUNDS; round++) {
      for (const scenario of scenarios) {
        const bareRun = await load(bare.port, bare.proc.pid!, bareRoute)
        await sleep(100)
        const apiRun = await runApi(scenario)
        const list = runs.get(scenario.key) ?? []
        list.push({ api: apiRun, bare: bareRun })
        runs.set(scenario.key, list)
        console.log(`round ${round}  ${scenario.label.padEnd(20)} ${fmt(apiRun.rps).padStart(7)} req/s (bare ${fmt(bareRun.rps).padStart(6)})  ` +
          `×${fmt(apiRun.rps / bareRun.rps, 2)}  p50 ${apiRun.p50} p99 ${apiRun.p99} ms  non-2xx ${apiRun.non2xx} err ${apiRun.errors}  ` +
          `cores: service ${fmt(apiRun.cores.server, 2)} db ${fmt(apiRun.cores.db, 2)} loadgen ${fmt(apiRun.cores.loadgen, 2)} other ${fmt(apiRun.cores.others, 2)}`)
      }
    }
    const rssAfter = rssKb(servicePid)
    const forgot = await forgotPasswordTiming(service.port)
    await sleep(1000)
    await Promise.all([bare.stop(), service.stop()])
    const log = await logErrors(service.logPath, readyAt)

    const allBare = [...runs.values()].flat().map((r) => r.bare)
    const bareRps = mean(allBare.map((r) => r.rps))
    const rows: string[][] = []
    const costRows: string[][] = []
    const us = (ms: number) => fmt(ms * 1000)
    rows.push([bareRoute.label, fmt(bareRps), fmt(median(allBare.map((r) => r.p50)), 1), fmt(median(allBare.map((r) => r.p99)), 1), '1.00',
      String(sum(allBare.map((r) => r.non2xx + r.errors))), '', ''])
    costRows.push([bareRoute.label, us(mean(allBare.map((r) => r.cpu.server))), '–', us(mean(allBare.map((r) => r.cpu.loadgen))),
      `${fmt(mean(allBare.map((r) => r.cores.server)), 2)} / – / ${fmt(mean(allBare.map((r) => r.cores.loadgen)), 2)} / ${fmt(mean(allBare.map((r) => r.cores.others)), 2)}`])
    for (const scenario of scenarios) {
      const list = runs.get(scenario.key)!
      const apiRuns = list.map((r) => r.api)
      const rps = mean(apiRuns.map((r) => r.rps))
      const ratios = list.map((r) => r.api.rps / r.bare.rps)
      const ratio = rps / mean(list.map((r) => r.bare.rps))
      const bad = sum(apiRuns.map((r) => r.non2xx + r.errors))
      if (bad > 0) {
        const codes: Record<string, number> = {}
        for (const r of apiRuns) for (const [code, count] of Object.entries(r.codes)) if (!code.startsWith('2')) codes[code] = (codes[code] ?? 0) + count
        problems.push(`${scenario.label}: non-2xx ${JSON.stringify(codes)}, connection errors ${sum(apiRuns.map((r) => r.errors))}, timeouts ${sum(apiRuns.map((r) => r.timeouts))}`)
      }
      const ok = scenario.target === undefined || (ratio >= scenario.target && bad === 0)
      rows.push([
        scenario.label,
        fmt(rps),
        fmt(median(apiRuns.map((r) => r.p50)), 1),
        fmt(median(apiRuns.map((r) => r.p99)), 1),
        `${fmt(ratio, 2)} (${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)})`,
        String(bad),
        scenario.target === undefined ? '' : `≥ ${fmt(scenario.target, 2)}× bare`,
        scenario.target === undefined ? '' : verdict(ok)
      ])
      costRows.push([scenario.label, us(mean(apiRuns.map((r) => r.cpu.server))), ferretdb ? us(mean(apiRuns.map((r) => r.cpu.db))) : '–',
        us(mean(apiRuns.map((r) => r.cpu.loadgen))),
        `${fmt(mean(apiRuns.map((r) => r.cores.server)), 2)} / ${ferretdb ? fmt(mean(apiRuns.map((r) => r.cores.db)), 2) : '–'} / ${fmt(mean(apiRuns.map((r) => r.cores.loadgen)), 2)} / ${fmt(mean(apiRuns.map((r) => r.cores.others)), 2)}`])
    }

    lines.push('| scenario | req/s | p50 ms | p99 ms | × bare (min–max) | errors | target | result |')
    lines.push('|---|---:|---:|---:|---:|---:|---|---|')
    for (const row of rows) lines.push(`| ${row.join(' | ')} |`)
    lines.push('')
    lines.push('| where the CPU goes | server µs/req | database µs/req | load generator µs/req | cores busy (server / db / loadgen / other processes) |')
    lines.push('|---|---:|---:|---:|---:|')
    for (const row of costRows) lines.push(`| ${row.join(' | ')} |`)
    lines.push('')
    lines.push(`service RSS after the HTTP rounds: ${fmt(rssAfter / 1024, 1)} MB`)
    const forgotRatio = forgot.known / forgot.unknown
    lines.push('')
    lines.push(`POST /auth/forgot-password, 50 + 50 interleaved, median: registered ${fmt(forgot.known, 1)} ms, unknown ${fmt(forgot.unknown, 1)} ms, ` +
      `×${fmt(forgotRatio, 2)} (target 0.80–1.25: ${verdict(forgotRatio >= 0.8 && forgotRatio <= 1.25)})`)
    if (log.count) problems.push(`service logged ${log.count} error lines: ${[...log.kinds].slice(0, 4).map(([k, n]) => `${n}× "${k}"`).join('; ')}`)
    return { lines, problems }
  } finally {
    await client.close().catch(() => {})
  }
}

/** The demo provider at the original's pace, or the openai provider relaying a local upstream at the same pace. */
type Provider = 'demo' | 'openai'

async function streamPhase (settings: ServiceSettings, mongodbUrl: string, databaseName: string, provider: Provider): Promise<Phase> {
  const lines: string[] = []
  const problems: string[] = []
  const upstream = provider === 'openai' ? await startChild('upstream', 'upstream', { BENCH_UPSTREAM_PIECES: '30', BENCH_UPSTREAM_DELAY_MS: '100' }) : null
  const providerSettings: Record<string, string> = upstream
    ? { ASSISTANT_PROVIDER: 'openai', ASSISTANT_BASE_URL: `http://127.0.0.1:${upstream.port}/v1`, ASSISTANT_MODEL: 'bench' }
    : {}
  const service = await startChild(`stream-service-${provider}`, 'api', { ...settings(100), ...providerSettings })
  const readyAt = await waitReady(service.port)
  console.log(`# stream service, ${provider} provider (${upstream ? `local upstream: 30 deltas, 100 ms apart, on :${upstream.port}` : 'ASSISTANT_WORD_DELAY_MS=100'}, ` +
    `MAX_STREAMS_PER_USER=${STREAMS_PER_USER}) on :${service.port} (pid ${service.proc.pid})`)
  // A few at a time: sign-ups hash passwords, and the service turns a long hashing queue away.
  const signUps = pLimit(4)
  const users = await Promise.all(Array.from({ length: STREAM_USERS }, async (_, i) => await signUps(() => createUser(service.port, `stream${i}`))))
  console.log(`# opening ${TOTAL_STREAMS} streams...`)
  const stream = await streamScenario(service, users.map((u) => u.token))
  await sleep(500)
  await service.stop()
  await upstream?.stop()
  const log = await logErrors(service.logPath, readyAt)

  // What the service stored: every reply should end as `complete` (the streams were read to the end).
  const stored: Record<string, number> = {}
  const client = new MongoClient(mongodbUrl)
  try {
    const owners = users.map((u) => new ObjectId(u.id))
    const statuses = await client.db(databaseName).collection('messages')
      .aggregate<{ _id: string | null, n: number }>([{ $match: { user_id: { $in: owners }, role: 'assistant' } }, { $group: { _id: '$status', n: { $sum: 1 } } }])
      .toArray()
    for (const { _id, n } of statuses) stored[String(_id)] = n
  } catch (error) {
    problems.push(`could not count the stored replies: ${(error as Error).message}`)
  } finally {
    await client.close().catch(() => {})
  }
  const storedTotal = sum(Object.values(stored))
  const storedComplete = stored.complete ?? 0

  const streamOk = stream.failures === TARGETS.streamFailures && stream.streams === TOTAL_STREAMS
  const rssOk = Number.isFinite(stream.perStreamKb) && stream.perStreamKb <= TARGETS.rssPerStreamKb
  const heap = stream.heapBefore && stream.heapOpen && stream.heapOpen.gc && stream.heapOpenStreams > 0
    ? {
        js: (stream.heapOpen.heapUsed - stream.heapBefore.heapUsed) / 1024 / stream.heapOpenStreams,
        external: (stream.heapOpen.external - stream.heapBefore.external) / 1024 / stream.heapOpenStreams
      }
    : null
  const pace = provider === 'openai' ? 'openai provider, local upstream, 100 ms/delta' : 'demo provider, 100 ms/word'
  lines.push(`| ${TOTAL_STREAMS} × POST /chat/stream (${STREAM_USERS} users × ${STREAMS_PER_USER}, ${pace}) | value | target | result |`)
  lines.push('|---|---:|---|---|')
  lines.push(`| failures (non-200, error, or no event) | ${stream.failures} | 0 | ${verdict(streamOk)} |`)
  lines.push(`| streams open at once (max) | ${stream.maxOpen} | ${TOTAL_STREAMS} | |`)
  lines.push(`| time to response headers p50 / p99 | ${fmt(stream.headersP50)} / ${fmt(stream.headersP99)} ms | | |`)
  lines.push(`| time to first event p50 / p99 (first word is due after 100 ms) | ${fmt(stream.ttfeP50)} / ${fmt(stream.ttfeP99)} ms | | |`)
  lines.push(`| events received (streams ending with \`event: done\`) | ${fmt(stream.events)} (${stream.done}) | | |`)
  lines.push(`| service RSS before → peak with all open | ${fmt(stream.rssBeforeKb / 1024, 1)} → ${fmt(stream.rssPeakKb / 1024, 1)} MB | | |`)
  lines.push(`| RSS per open stream | ${fmt(stream.perStreamKb, 1)} KB | ≤ ${TARGETS.rssPerStreamKb} KB | ${verdict(rssOk)} |`)
  lines.push(`| live memory per open stream after a full GC: JS heap + external | ${heap ? `${fmt(heap.js, 1)} + ${fmt(heap.external, 1)} KB (${stream.heapOpenStreams} open)` : 'n/a (never 95 % open at once)'} | | |`)
  lines.push(`| replies stored \`complete\` | ${storedComplete} / ${TOTAL_STREAMS + STREAM_USERS} | all | ${verdict(storedComplete === TOTAL_STREAMS + STREAM_USERS)} |`)
  lines.push(`| wall time, all streams | ${fmt(stream.wallMs / 1000, 1)} s | | |`)
  lines.push(`| CPU during the streams: service / database | ${fmt(stream.serviceCpuMs / 1000, 1)} s / ${ferretdb ? `${fmt(stream.dbCpuMs / 1000, 1)} s` : '–'} | | |`)
  lines.push(`| service CPU per 1,000 relayed events | ${stream.events > 0 ? `${fmt(stream.serviceCpuMs / stream.events * 1000)} ms` : 'n/a'} | | |`)
  if (Object.keys(stream.reasons).length) problems.push(`stream failures: ${JSON.stringify(stream.reasons)}`)
  if (storedComplete !== storedTotal || storedTotal !== TOTAL_STREAMS + STREAM_USERS) {
    problems.push(`stored assistant replies by status (${TOTAL_STREAMS} streams + ${STREAM_USERS} warm-up): ${JSON.stringify(stored)}`)
  }
  if (stream.errorEvents) problems.push(`streams ending with event: error: ${stream.errorEvents}`)
  if (log.count) problems.push(`stream service logged ${log.count} error lines: ${[...log.kinds].slice(0, 4).map(([k, n]) => `${n}× "${k}"`).join('; ')}`)
  return { lines, problems }
}

async function main () {
  const t0 = performance.now()
  const ulimit = Number.parseInt(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim(), 10)
  workDir = mkdtempSync(join(tmpdir(), 'bench-'))
  console.log(`# bench: node ${process.version}, ${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), ulimit -n ${Number.isFinite(ulimit) ? ulimit : 'unlimited'}`)
  console.log(`# ${ROUNDS} interleaved rounds × ${DURATION_S} s per scenario, ${CONNECTIONS} connections; service LOG_LEVEL=${LOG_LEVEL} (to a file)`)
  if (Number.isFinite(ulimit) && ulimit < 4096) {
    console.log(`# NOTE: ulimit -n is ${ulimit}; ${TOTAL_STREAMS} streams need about ${TOTAL_STREAMS + 200} descriptors in this process and in the service.` +
      ' Raise it (`ulimit -n 8192`) before `npm run bench`; stream failures below may be EMFILE.')
  }

  const idleCheck = systemBusyMs()
  await sleep(1000)
  const busyBefore = (systemBusyMs() - idleCheck) / 1000
  console.log(`# other load before start: ${fmt(busyBefore, 2)} cores busy${busyBefore > 0.3 ? ' (NOTE: the machine is not idle; ratios are taken in the same rounds, absolute numbers will be low)' : ''}`)

  let mongodbUrl = process.env.MONGODB_URL
  if (!mongodbUrl) {
    // Durable like a production database: PostgreSQL keeps fsync and synchronous commits on.
    ferretdb = await startFerretdb({ durable: true })
    mongodbUrl = ferretdb.url
    console.log(`# database: embedded FerretDB on ${ferretdb.backend === 'pg' ? 'PostgreSQL' : 'SQLite'} at ${mongodbUrl} (throwaway data folder, pid ${ferretdb.process.pid})`)
  } else {
    console.log('# database: MONGODB_URL (its CPU is not measured)')
  }
  const databaseName = `bench_${randomBytes(4).toString('hex')}`
  const settings: ServiceSettings = (delayMs) => ({
    NODE_ENV: 'production',
    MONGODB_URL: mongodbUrl!,
    DATABASE_NAME: databaseName,
    SECRET_KEY: SECRET,
    LOG_LEVEL,
    RATE_LIMIT_ENABLED: 'false',
    ASSISTANT_WORD_DELAY_MS: String(delayMs),
    MAX_STREAMS_PER_USER: String(STREAMS_PER_USER)
  })

  try {
    const http = ONLY === 'stream' ? null : await httpPhase(settings, mongodbUrl, databaseName)
    const demoStreams = ONLY === 'http' ? null : await streamPhase(settings, mongodbUrl, databaseName, 'demo')
    const openaiStreams = ONLY === 'http' ? null : await streamPhase(settings, mongodbUrl, databaseName, 'openai')

    console.log('')
    console.log(`## Benchmark (${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpus().length} CPU, ` +
      `${process.env.MONGODB_URL ? 'MONGODB_URL' : 'FerretDB 1.24 SQLite'}, ${CONNECTIONS} connections, ` +
      `${ROUNDS}×${DURATION_S} s interleaved, service LOG_LEVEL=${LOG_LEVEL})`)
    console.log('')
    for (const phase of [http, demoStreams, openaiStreams]) {
      if (!phase) continue
      for (const line of phase.lines) console.log(line)
      console.log('')
    }
    const problems = [http, demoStreams, openaiStreams].flatMap((phase) => phase?.problems ?? [])
    if (problems.length) {
      console.log('problems:')
      for (const p of problems) console.log(`  - ${p}`)
    } else {
      console.log('problems: none (0 non-2xx, 0 connection errors, 0 error log lines)')
    }
    if (CPU_PROF_DIR) console.log(`CPU profiles of the service children (one per thread; the largest is the main thread): ${CPU_PROF_DIR}/<child>/`)
    if (LOG_DIR) console.log(`service logs kept in ${LOG_DIR}`)
    console.log(`bench finished in ${fmt((performance.now() - t0) / 1000, 1)} s`)
  } finally {
    if (process.env.MONGODB_URL) {
      const client = new MongoClient(process.env.MONGODB_URL)
      try { await client.db(databaseName).dropDatabase() } catch {} finally { await client.close().catch(() => {}) }
    }
    await cleanup()
  }
}

try {
  await main()
  process.exit(0)
} catch (error) {
  console.error('bench failed:', error)
  await cleanup()
  process.exit(1)
}
