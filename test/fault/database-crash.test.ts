import { mkdtempSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startFerretdb } from '../../scripts/ferretdb.js'
import { build, db } from '../support/app.js'
import { until } from '../support/until.js'
import { PASSWORD, signUp } from '../support/users.js'

const ROUNDS = 10
const DOWN_MS = 2000
const WORKERS = 4
const REQUESTS_PER_WORKER = 400
const TIME_LIMIT_MS = 120_000

t.test('the database killed (-9) under write load and restarted: every 2xx is stored once, the API recovers by itself', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ferretdb-crash-'))
  let database = await startFerretdb({ dataDir })
  t.teardown(async () => {
    await database.stop()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const app = await build(t, { MONGODB_URL: database.url, DATABASE_TIMEOUT_MS: '1500' })
  const { headers } = await signUp(app)
  const run = Date.now().toString(36)

  // The ledger: what the client was told was stored, and what it cannot know (a failure may come after the write).
  const stored = { accounts: [] as string[], chats: [] as Array<{ id: string, title: string }> }
  const unsure = { accounts: [] as string[], chats: [] as string[] }
  const successes: Array<{ startedAt: number }> = []
  const failures = new Map<number, number>()
  let afterNextSuccess: (() => void) | undefined
  const load = new AbortController()

  const oddIds: string[] = []
  function record ({ statusCode: status, headers }: { statusCode: number, headers: Record<string, unknown> }, startedAt: number) {
    if (status >= 200 && status < 300) {
      successes.push({ startedAt })
      afterNextSuccess?.()
      afterNextSuccess = undefined
      return true
    }
    failures.set(status, (failures.get(status) ?? 0) + 1)
    if (status !== 503) oddIds.push(headers['x-request-id'] as string)
    return false
  }

  async function worker (w: number) {
    for (let n = 0; n < REQUESTS_PER_WORKER && !load.signal.aborted; n++) {
      const startedAt = Date.now()
      let ok: boolean
      if (n % 4 === 0) {
        const email = `crash-${run}-${w}-${n}@example.com`
        const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
        ok = record(res, startedAt)
        ;(ok ? stored.accounts : unsure.accounts).push(email)
      } else {
        const title = `crash ${run} ${w}-${n}`
        const res = await app.inject({ method: 'POST', url: '/chat/', headers, payload: { title, messages: [{ role: 'user', content: title }] } })
        ok = record(res, startedAt)
        if (ok) stored.chats.push({ id: res.json().id, title })
        else unsure.chats.push(title)
      }
      if (!ok) await sleep(100)
    }
  }

  /** Resolves with the time from `since` to the end of the first 2xx of a request sent after it. */
  async function recovered (since: number) {
    await until(() => successes.some((s) => s.startedAt >= since), 30_000, 'a 2xx after the restart', 20)
    return Date.now() - since
  }

  const limit = setTimeout(() => load.abort(), TIME_LIMIT_MS)
  t.teardown(() => clearTimeout(limit))
  const workers = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)))

  const recoveries: number[] = []
  for (let round = 0; round < ROUNDS && !load.signal.aborted; round++) {
    await sleep(300)
    // Killed in the same tick as a 2xx: that write must have been made durable before the answer.
    const killed = new Promise<void>((resolve) => {
      afterNextSuccess = () => {
        database.process.kill('SIGKILL')
        resolve()
      }
    })
    await killed
    if (database.process.exitCode === null && database.process.signalCode === null) await once(database.process, 'exit')
    await sleep(DOWN_MS)
    database = await startFerretdb({ dataDir, port: database.port })
    recoveries.push(await recovered(Date.now()))
  }
  const lastRestart = Date.now()
  await until(() => successes.filter((s) => s.startedAt >= lastRestart).length >= 20 || load.signal.aborted, TIME_LIMIT_MS, '20 2xx after the last restart', 50)
  load.abort()
  await workers

  t.equal(recoveries.length, ROUNDS, `${ROUNDS} kills and restarts`)
  t.comment(`recovery after each restart (first 2xx of a request sent after it): ${recoveries.join(', ')} ms`)
  t.comment(`${successes.length} 2xx (${stored.accounts.length} sign-ups, ${stored.chats.length} chats), failures by status: ${JSON.stringify(Object.fromEntries(failures))}`)
  const errorsLogged = oddIds.map((id) => app.logs.lines.find((l) => l.request_id === id && l.msg === 'request failed')?.err)
  t.same([...failures.keys()].filter((status) => status !== 503), [], `every failure was a 503 ${JSON.stringify(errorsLogged, null, 1)}`)
  t.ok(stored.accounts.length > 0 && stored.chats.length > 0, 'both kinds of write succeeded')

  const users = db(app).collection('users')
  const chats = db(app).collection('chats')
  const messages = db(app).collection('messages')
  const accounts = await users.find({ email: { $regex: `^crash-${run}-` } }, { projection: { email: 1 } }).toArray()
  const accountEmails = accounts.map((a) => a.email as string)
  t.same(stored.accounts.filter((e) => !accountEmails.includes(e)), [], 'every 2xx sign-up is stored')
  t.equal(new Set(accountEmails).size, accountEmails.length, 'no account twice')
  t.same(accountEmails.filter((e) => !stored.accounts.includes(e) && !unsure.accounts.includes(e)), [], 'no account that was not asked for')

  const chatDocs = await chats.find({ title: { $regex: `^crash ${run} ` } }, { projection: { title: 1 } }).toArray()
  const chatIds = new Set(chatDocs.map((c) => c._id.toHexString()))
  t.same(stored.chats.filter((c) => !chatIds.has(c.id)), [], 'every 2xx chat is stored')
  const titles = chatDocs.map((c) => c.title as string)
  t.equal(new Set(titles).size, titles.length, 'no chat twice')
  t.same(titles.filter((title) => !stored.chats.some((c) => c.title === title) && !unsure.chats.includes(title)), [], 'no chat that was not asked for')
  const withMessage = await messages.distinct('chat_id', { chat_id: { $in: chatDocs.map((c) => c._id) } })
  t.same(stored.chats.filter((c) => !withMessage.some((id) => id.toHexString() === c.id)).map((c) => c.title), [], 'every 2xx chat has its message')

  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'ready, with no restart of the app')
})
