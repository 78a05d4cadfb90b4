/**
 * Child-process entry for `npm run bench` (scripts/bench.ts): `bare` runs a bare Fastify with one
 * GET route, `api` runs the service from the environment, `upstream` a fast OpenAI-protocol server
 * (BENCH_UPSTREAM_PIECES deltas, BENCH_UPSTREAM_DELAY_MS apart). Each listens on a free 127.0.0.1 port,
 * reports it to the parent over IPC, and stops on SIGTERM / SIGINT or when the parent goes away.
 * The parent may ask for `{ type: 'memory' }` (after a full GC when run with --expose-gc).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { buildApp } from '../../app.js'
import { startOpenAiStub } from '../openai-stub.js'

const mode = process.argv[2]
let server: FastifyInstance

if (mode === 'upstream') {
  const stub = await startOpenAiStub({ keepRequests: false })
  const pieces = Array.from({ length: Number(process.env.BENCH_UPSTREAM_PIECES ?? 30) }, (_, i) => `word${i} `)
  stub.respond(() => ({ pieces, pieceDelayMs: Number(process.env.BENCH_UPSTREAM_DELAY_MS ?? 100) }))
  const exit = () => { stub.close(); process.exit(0) }
  process.on('SIGTERM', exit)
  process.on('disconnect', exit)
  process.send?.({ type: 'listening', port: Number(new URL(stub.url).port) })
  await new Promise(() => {}) // serves until told to stop
}

if (mode === 'bare') {
  server = Fastify()
  server.get('/', async () => ({ status: 'ok' }))
} else if (mode === 'api') {
  server = await buildApp(process.env)
} else {
  console.error('usage: scripts/bench/server.ts bare|api|upstream')
  process.exit(2)
}

let closing = false
async function close () {
  if (closing) return
  closing = true
  const force = setTimeout(() => process.exit(0), 5000)
  force.unref()
  try { await server.close() } finally { process.exit(0) }
}
process.on('SIGTERM', close)
process.on('SIGINT', close)
process.on('disconnect', close)

process.on('message', (message: { type?: string }) => {
  if (message?.type !== 'memory') return
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc) gc()
  process.send?.({ type: 'memory', gc: Boolean(gc), ...process.memoryUsage() })
})

await server.listen({ host: '127.0.0.1', port: 0 })
const address = server.server.address()
process.send?.({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 })
