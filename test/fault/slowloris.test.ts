import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { build } from '../support/app.js'
import { call } from '../support/service.js'
import { signUp } from '../support/users.js'

const SOCKETS = 200
const BYTE_EVERY_MS = 2000
// The service's own requestTimeout (30 s) and Node's check interval (30 s) would take up to a minute;
// the same mechanism, shortened, keeps this test short.
const REQUEST_TIMEOUT_MS = 5000
const CHECK_INTERVAL_MS = 500
const TIME_LIMIT_MS = 60_000

interface SlowResult { closedByServer: boolean, lifetimeMs: number, bytesSent: number, answer: string }

/** A client that sends its request headers one byte every BYTE_EVERY_MS and never finishes them. */
function slowClient (port: number, i: number): Promise<SlowResult> {
  return new Promise((resolve) => {
    const headers = `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-${i}: ${'a'.repeat(100)}`
    const socket = connect(port, '127.0.0.1')
    const opened = Date.now()
    let sent = 0
    let answer = ''
    let closedByUs = false
    const send = () => { if (sent < headers.length) socket.write(headers[sent++]!) }
    socket.once('connect', send)
    const drip = setInterval(send, BYTE_EVERY_MS)
    const limit = setTimeout(() => { closedByUs = true; socket.destroy() }, TIME_LIMIT_MS)
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString() })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(drip)
      clearTimeout(limit)
      resolve({ closedByServer: !closedByUs, lifetimeMs: Date.now() - opened, bytesSent: sent, answer })
    })
  })
}

t.test(`slowloris: ${SOCKETS} slow header senders are cut off by the request timeout while normal requests keep working`, async (t) => {
  const app = await build(t, {}, { server: { requestTimeout: REQUEST_TIMEOUT_MS, http: { connectionsCheckingInterval: CHECK_INTERVAL_MS } } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const { headers } = await signUp(app)

  const slow: Array<Promise<SlowResult>> = []
  for (let i = 0; i < SOCKETS; i++) {
    slow.push(slowClient(port, i))
    if (i % 20 === 19) await sleep(BYTE_EVERY_MS / 10) // spread the drips over the interval
  }
  const allClosed = new AbortController()
  const results = Promise.all(slow).finally(() => allClosed.abort())

  const latencies: number[] = []
  const statuses: number[] = []
  const deadline = Date.now() + TIME_LIMIT_MS
  while (!allClosed.signal.aborted && Date.now() < deadline) {
    for (const path of ['/health', '/users/me']) {
      const started = performance.now()
      statuses.push((await call(port, 'GET', path, undefined, headers)).status)
      latencies.push(performance.now() - started)
    }
    await sleep(100)
  }

  const closed = await results
  const lifetimes = closed.map((r) => r.lifetimeMs).sort((a, b) => a - b)
  t.equal(closed.filter((r) => r.closedByServer).length, SOCKETS, 'the server closed every slow socket')
  t.ok(closed.every((r) => r.answer.startsWith('HTTP/1.1 408')), 'each with 408 Request Timeout')
  t.ok(closed.every((r) => r.bytesSent >= 2), 'while it was still sending (not for being idle)')
  t.ok(lifetimes[0]! >= REQUEST_TIMEOUT_MS - 100 && lifetimes.at(-1)! <= REQUEST_TIMEOUT_MS + CHECK_INTERVAL_MS + 1000,
    `closed after ${lifetimes[0]}–${lifetimes.at(-1)} ms: the request timeout (${REQUEST_TIMEOUT_MS} ms) plus at most one check`)

  latencies.sort((a, b) => a - b)
  const p95 = latencies[Math.floor(latencies.length * 0.95)]!
  t.ok(statuses.length >= 20 && statuses.every((s) => s === 200), `${statuses.length} normal requests meanwhile, all 200`)
  t.ok(p95 < 200, `their p95 latency was ${p95.toFixed(1)} ms`)
})
