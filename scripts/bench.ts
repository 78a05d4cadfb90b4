/**
 * `npm run bench`: measures the service against a bare Fastify route in the same run (DEVELOPERS:
 * "Speed is measured, not asserted"). Prints ratios and PASS/MISS per target, and always exits 0
 * once it has measured (1 only when it could not run). The parts live in scripts/bench/:
 *
 * - database: MONGODB_URL when set, otherwise the embedded FerretDB (scripts/ferretdb.ts) with a
 *   throwaway data folder; its CPU is read from /proc for FerretDB and its PostgreSQL cluster
 *   (db-processes.ts), and db-floor.ts times a lookup by `_id` at 10 and 10,000 documents.
 * - Idle (idle-phase.ts): the database CPU and requests of a service doing nothing, with data stored.
 * - HTTP (http-phase.ts): the service and a bare Fastify, each in its own child process
 *   (server.ts), loaded with autocannon in interleaved rounds; ratios to the bare route, CPU per
 *   request, the forgot-password timing.
 * - Streams (stream-phase.ts): 1,000 concurrent POST /chat/stream as 334 users × 3 with the demo
 *   provider at 100 ms a word, the same through the openai provider relaying a local upstream, and
 *   4,000 as 1,334 × 3; failures by kind, time to first event, RSS per open stream, CPU per 1,000
 *   text events, and database requests per stream counted by a wire-protocol proxy (wire-proxy.ts).
 * - Resumed streams (resume-phase.ts): how far a stream resumed with Last-Event-ID lags behind the
 *   original, on the instance streaming the reply and on another one.
 *
 * Knobs (environment): BENCH_ROUNDS (3), BENCH_DURATION_S (3), BENCH_CONNECTIONS (50),
 * BENCH_STREAMS (1000; 0 skips those two scenarios), BENCH_BIG_STREAMS (4000; 0 skips it),
 * BENCH_STREAMS_PER_USER (3, also the service's MAX_STREAMS_PER_USER), BENCH_STREAM_DEADLINE_S
 * (20), BENCH_LOG_LEVEL (the service's, default info; logs go to a file scanned for errors),
 * BENCH_LOG_DIR=<dir> (keep those logs), BENCH_CPU_PROF=<dir> (`node --cpu-prof` the services),
 * BENCH_COUNT_REQUESTS=0 (streams without the counting proxy), BENCH_ONLY=http|stream|floor|idle|resume.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpus } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { MongoClient } from 'mongodb'
import { cleanup, guardChildren, ownDatabase } from './bench/children.js'
import type { BenchContext, Phase } from './bench/context.js'
import { databaseFloor } from './bench/db-floor.js'
import { databaseProcesses } from './bench/db-processes.js'
import { httpPhase } from './bench/http-phase.js'
import { idlePhase } from './bench/idle-phase.js'
import { systemBusyMs } from './bench/probes.js'
import { settings } from './bench/settings.js'
import { fmt } from './bench/stats.js'
import { resumePhase } from './bench/resume-phase.js'
import { streamPhase } from './bench/stream-phase.js'
import { startFerretdb, type RunningFerretdb } from './ferretdb.js'

async function main () {
  const t0 = performance.now()
  guardChildren()
  const ulimit = Number.parseInt(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim(), 10)
  const mostStreams = Math.max(settings.streams, settings.bigStreams)
  console.log(`# bench: node ${process.version}, ${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), ulimit -n ${Number.isFinite(ulimit) ? ulimit : 'unlimited'}`)
  if (Number.isFinite(ulimit) && ulimit < mostStreams + 500) {
    console.log(`# NOTE: ulimit -n is ${ulimit}; ${mostStreams} streams need about ${mostStreams + 500} descriptors in this process and in the service.` +
      ` Raise it (\`ulimit -n ${Math.max(8192, mostStreams * 2)}\`) before \`npm run bench\`; stream failures below may be EMFILE.`)
  }
  const idleCheck = systemBusyMs()
  await sleep(1000)
  const busyBefore = (systemBusyMs() - idleCheck) / 1000
  console.log(`# other load before start: ${fmt(busyBefore, 2)} cores busy${busyBefore > 0.3 ? ' (NOTE: the machine is not idle; ratios are taken in the same rounds, absolute numbers will be low)' : ''}`)

  let ferretdb: RunningFerretdb | null = null
  if (!process.env.MONGODB_URL) {
    // Durable like a production database (PostgreSQL keeps fsync and synchronous commits on), where
    // scripts/ferretdb.ts runs one.
    ferretdb = await startFerretdb({ durable: true })
    ownDatabase(ferretdb)
  }
  const mongodbUrl = process.env.MONGODB_URL ?? ferretdb!.url
  const db = databaseProcesses(ferretdb as unknown as Parameters<typeof databaseProcesses>[0])
  const backend = db.backend === 'external' ? 'MONGODB_URL' : `FerretDB 1.24 on ${db.backend === 'pg' ? 'PostgreSQL' : db.backend === 'sqlite' ? 'SQLite' : db.backend}`
  console.log(`# database: ${backend} at ${mongodbUrl}; CPU measured for ${db.describe}`)
  const databaseName = `bench_${randomBytes(4).toString('hex')}`
  const ctx: BenchContext = {
    mongodbUrl,
    databaseName,
    db,
    serviceEnv: (extra = {}) => ({
      NODE_ENV: 'production',
      MONGODB_URL: mongodbUrl,
      DATABASE_NAME: databaseName,
      SECRET_KEY: settings.secret,
      LOG_LEVEL: settings.logLevel,
      RATE_LIMIT_ENABLED: 'false',
      MAX_STREAMS_PER_USER: String(settings.streamsPerUser),
      ...extra
    })
  }

  try {
    const run = async (part: string, phase: (ctx: BenchContext) => Promise<Phase>) => settings.only && settings.only !== part ? null : await phase(ctx)
    const phases = [await run('floor', databaseFloor), await run('idle', idlePhase), await run('http', httpPhase), await run('stream', streamPhase), await run('resume', resumePhase)]

    console.log('')
    console.log(`## Benchmark (${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpus().length} CPU, ${backend}, ` +
      `one service process, ${settings.connections} connections, ${settings.rounds}×${settings.durationS} s interleaved, service LOG_LEVEL=${settings.logLevel})`)
    console.log('')
    for (const phase of phases) {
      if (!phase) continue
      for (const line of phase.lines) console.log(line)
      console.log('')
    }
    const problems = phases.flatMap((phase) => phase?.problems ?? [])
    if (problems.length) {
      console.log('problems:')
      for (const p of problems) console.log(`  - ${p}`)
    } else {
      console.log('problems: none (0 non-2xx, 0 connection errors, 0 error log lines)')
    }
    if (settings.cpuProfDir) console.log(`CPU profiles of the services (one per thread; the largest is the main thread): ${settings.cpuProfDir}/<child>/`)
    if (settings.logDir) console.log(`service logs kept in ${settings.logDir}`)
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
