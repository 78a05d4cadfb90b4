/** A real redis-server (Debian's package) on a free loopback port, stopped when the test ends. */
import { spawn } from 'node:child_process'
import { createConnection } from 'node:net'
import type { Test } from 'tap'
import { closedPort } from './smtp.js'
import { until } from './until.js'

export interface TestRedis {
  url: string
  stop (): Promise<void>
}

/** Whether something answers PING on `port`. */
function pong (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(port, '127.0.0.1', () => socket.write('PING\r\n'))
    socket.once('data', (data) => { socket.destroy(); resolve(data.toString().startsWith('+PONG')) })
    socket.once('error', () => resolve(false))
  })
}

export async function startRedis (t: Test): Promise<TestRedis> {
  const port = await closedPort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.once('error', () => {}) // a missing redis-server shows as the wait below failing
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(stop)
  await until(() => pong(port), 10_000, 'redis-server to answer (Debian: apt-get install redis-server)')
  return { url: `redis://127.0.0.1:${port}`, stop }
}
