/**
 * Child-process entry for `npm run bench`: a TCP proxy between the service and the database that
 * counts the service's requests by command (scripts/bench/wire-counter.ts). Both directions are
 * piped; the client→server bytes are also read for their headers. BENCH_PROXY_TARGET is the
 * database's `host:port`. Answers `{ type: 'counts' }` over IPC with the counts of every
 * connection so far.
 */
import { connect, createServer, type Socket } from 'node:net'
import { WireCounter } from './wire-counter.js'

const [host, port] = (process.env.BENCH_PROXY_TARGET ?? '').split(':')
if (!host || !port) {
  console.error('wire-proxy: BENCH_PROXY_TARGET=host:port is required')
  process.exit(2)
}

const counters = new Set<WireCounter>()
const sockets = new Set<Socket>()

const server = createServer((client) => {
  const upstream = connect(Number(port), host)
  const counter = new WireCounter()
  counters.add(counter)
  for (const socket of [client, upstream]) {
    socket.setNoDelay(true)
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => { client.destroy(); upstream.destroy() })
  }
  client.on('data', (chunk: Buffer) => counter.feed(chunk))
  client.pipe(upstream)
  upstream.pipe(client)
})

process.on('message', (message: { type?: string }) => {
  if (message?.type !== 'counts') return
  const counts: Record<string, number> = {}
  let total = 0
  for (const counter of counters) {
    total += counter.total
    for (const [name, n] of counter.counts) counts[name] = (counts[name] ?? 0) + n
  }
  process.send?.({ type: 'counts', total, counts })
})

const exit = () => {
  for (const socket of sockets) socket.destroy()
  server.close()
  process.exit(0)
}
process.on('SIGTERM', exit)
process.on('SIGINT', exit)
process.on('disconnect', exit)

server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  process.send?.({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 })
})
