/**
 * Background work with data stored: an idle service (no requests) on a database holding 10,000
 * messages in 100 chats, 1,000 sessions and 1,000 sent mails. Its heartbeat, outbox poll, sweeps
 * and prunes should cost the database next to nothing, whatever is stored.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { MongoClient, ObjectId } from 'mongodb'
import { ask, startChild, type Child } from './children.js'
import type { BenchContext, Phase } from './context.js'
import { cpuMs } from './probes.js'
import { waitReady } from './service-api.js'
import { fmt } from './stats.js'
import { proxiedUrl, proxyTarget } from './stream-phase.js'
import type { WireCounts } from './stream-window.js'

const IDLE_MS = 10_000

async function seed (url: string, databaseName: string) {
  const client = new MongoClient(url)
  try {
    const db = client.db(databaseName)
    const now = new Date()
    const later = new Date(now.getTime() + 86_400_000)
    const users = Array.from({ length: 100 }, () => new ObjectId())
    await db.collection('sessions').insertMany(Array.from({ length: 1000 }, (_, i) => ({
      user_id: users[i % users.length], created_at: now, last_used_at: now, expires_at: later, user_agent: 'bench', ip: '127.0.0.1', revoked_at: null, refresh_hash: new ObjectId().toHexString(), grace_token: null
    })))
    for (let c = 0; c < 100; c++) {
      const chatId = new ObjectId()
      const owner = users[c]!
      await db.collection('chats').insertOne({ _id: chatId, user_id: owner, title: `chat ${c}`, created_at: now, updated_at: now, message_count: 100, last_message: null })
      await db.collection('messages').insertMany(Array.from({ length: 100 }, (_, i) => ({
        chat_id: chatId, user_id: owner, seq: i + 1, role: i % 2 ? 'assistant' : 'user', content: 'a stored message '.repeat(10), ...(i % 2 ? { status: 'complete' } : {}), created_at: now, updated_at: now
      })))
    }
    await db.collection('mail_outbox').insertMany(Array.from({ length: 1000 }, (_, i) => ({
      to: `user${i}@example.com`, kind: 'verify-email', subject: 'Verify', status: 'sent', attempts: 1, next_attempt_at: now, created_at: now, last_attempt_at: now, expires_at: null, lease_until: null, lease_owner: null, last_error: null, finished_at: now
    })))
  } finally {
    await client.close()
  }
}

export async function idlePhase (ctx: BenchContext): Promise<Phase> {
  const databaseName = `${ctx.databaseName}_idle`
  const started: Child[] = []
  try {
    await seed(ctx.mongodbUrl, databaseName)
    const target = proxyTarget(ctx.mongodbUrl)
    const proxy = target ? await startChild('idle-proxy', 'proxy', { BENCH_PROXY_TARGET: target }) : null
    if (proxy) started.push(proxy)
    const service = await startChild('idle', 'api', ctx.serviceEnv({ DATABASE_NAME: databaseName, ...(proxy && { MONGODB_URL: proxiedUrl(ctx.mongodbUrl, proxy.port) }) }))
    started.push(service)
    await waitReady(service.port)
    await sleep(3000) // startup sweeps and index checks are over
    const before = { db: ctx.db.cpuMs(), service: cpuMs(service.pid), ops: proxy ? await ask<WireCounts>(proxy, 'counts') : null, at: performance.now() }
    await sleep(IDLE_MS)
    const seconds = (performance.now() - before.at) / 1000
    const db = (ctx.db.cpuMs() - before.db) / seconds
    const serviceMs = (cpuMs(service.pid) - before.service) / seconds
    const after = proxy ? await ask<WireCounts>(proxy, 'counts') : null
    const ops = after && before.ops ? (after.total - before.ops.total) / seconds : null
    const byCommand = after && before.ops
      ? Object.entries(after.counts).map(([name, n]) => [name, (n - (before.ops!.counts[name] ?? 0)) / seconds] as const).filter(([, n]) => n > 0)
        .sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ${fmt(n, 1)}/s`).join(', ')
      : ''
    return {
      lines: [`idle service, 10,000 messages, 1,000 sessions and 1,000 sent mails stored: database CPU ${ctx.db.measured ? `${fmt(db, 1)} ms/s` : 'not measured'}, ` +
        `service CPU ${fmt(serviceMs, 1)} ms/s${ops === null ? '' : `, ${fmt(ops, 1)} database requests/s (${byCommand})`}`],
      problems: []
    }
  } finally {
    await Promise.all(started.map(async (child) => await child.stop()))
    const client = new MongoClient(ctx.mongodbUrl)
    await client.db(databaseName).dropDatabase().catch(() => {})
    await client.close().catch(() => {})
  }
}
