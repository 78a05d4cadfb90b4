import { spawn } from 'node:child_process'
import { request } from 'node:http'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { MongoClient } from 'mongodb'
import { databaseUrl, TEST_SECRET, uniqueEmail, PASSWORD } from '../helper.js'

/** The real service process (server.ts), as `npm start` would run it, on the test database. */
async function startServer (t: import('tap').Test, database: string) {
  const child = spawn('node_modules/.bin/tsx', ['server.ts'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      MONGODB_URL: await databaseUrl(),
      DATABASE_NAME: database,
      SECRET_KEY: TEST_SECRET,
      PORT: '0',
      RATE_LIMIT_ENABLED: 'false',
      ASSISTANT_WORD_DELAY_MS: '200'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000)
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = output.match(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/)
      if (match) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  })
  return { child, port, output: () => output }
}

function call (port: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return new Promise<{ status: number, body: string }>((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body)
    const req = request({ port, host: '127.0.0.1', method, path, headers: { ...(data ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(data)
  })
}

t.test('SIGTERM: open streams end with their partial reply stored, the process exits 0', async (t) => {
  const database = `test_shutdown_${process.pid}`
  const server = await startServer(t, database)
  const deadline = Date.now() + 30_000
  while ((await call(server.port, 'GET', '/health/ready')).status !== 200 && Date.now() < deadline) await sleep(100)
  const email = uniqueEmail()
  t.equal((await call(server.port, 'POST', '/auth/register', { email, password: PASSWORD })).status, 201)
  const login = await call(server.port, 'POST', '/auth/login', { username: email, password: PASSWORD })
  const auth = { authorization: `Bearer ${JSON.parse(login.body).access_token}` }

  // Open three streams and wait for each to deliver its first event.
  const streams = await Promise.all([1, 2, 3].map(() => new Promise<{ received: () => string, ended: Promise<void> }>((resolve, reject) => {
    const req = request({ port: server.port, host: '127.0.0.1', method: 'POST', path: '/chat/stream', headers: { ...auth, 'content-type': 'application/json' } }, (res) => {
      let raw = ''
      const ended = once(res, 'end').then(() => undefined)
      res.on('data', (c: Buffer) => {
        raw += c.toString()
        if (raw.includes('\n\n')) resolve({ received: () => raw, ended })
      })
    })
    req.on('error', reject)
    req.end(JSON.stringify({ message: 'tell me something long' }))
  })))

  server.child.kill('SIGTERM')
  const [code] = await once(server.child, 'exit') as [number | null]
  t.equal(code, 0, 'exit code 0')
  await Promise.all(streams.map((s) => s.ended))
  t.pass('every stream was ended by the server')

  const client = new MongoClient(await databaseUrl())
  t.teardown(async () => {
    await client.db(database).dropDatabase()
    await client.close()
  })
  const replies = await client.db(database).collection('messages').find({ role: 'assistant' }).toArray()
  t.equal(replies.length, 3, 'three replies stored')
  for (const reply of replies) t.equal(reply.status, 'interrupted', 'each marked interrupted')
  const received = streams.map((s) => s.received().split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => JSON.parse(e.slice(6)).text).join(''))
  for (const text of received) {
    t.ok(replies.some((r) => (r.content as string).startsWith(text) && text.length > 0), 'stored text holds everything the client received')
  }
  t.equal(await client.db(database).collection('messages').countDocuments({ status: 'streaming' }), 0, 'nothing left streaming')
})
