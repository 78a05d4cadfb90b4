/**
 * Child-process entry for `npm run bench` (scripts/bench.ts): `bare` runs a bare Fastify with one
 * GET route, `api` runs the service from the environment. Both listen on a free 127.0.0.1 port and
 * report it to the parent over IPC, then stop on SIGTERM / SIGINT or when the parent goes away.
 * The parent may ask for `{ type: 'memory' }` (after a full GC when run with --expose-gc).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { buildApp } from '../app.js'

const mode = process.argv[2]
let server: FastifyInstance

if (mode === 'bare') {
  server = Fastify()
  server.get('/', async () => ({ status: 'ok' }))
} else if (mode === 'api') {
  server = await buildApp(process.env)
} else {
  console.error('usage: bench-server.ts bare|api')
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
