/**
 * A TCP proxy in front of the test database that can hold back what the app has sent on the
 * connections open at a moment, while new connections pass: a write "delayed in the network",
 * delivered later on demand. Not a fake: every byte still goes to the real database.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

interface Link {
  client: Socket
  upstream: Socket
  held: Buffer[] | null
  answered?: () => void
}

export interface DatabaseProxy {
  url: string
  /** Holds back from now on what the app sends on the connections open now. */
  holdOpenConnections (): void
  /** Whether the held-back bytes contain `text` (a collection name, for instance). */
  holds (text: string): boolean
  /** Delays by `ms` from now on what the app sends, on every connection (0: no more delay): a slow database. */
  delay (ms: number): void
  /** Resets every connection open now (the app sees ECONNRESET, not a timeout). */
  reset (): void
  /** Delivers the held-back bytes; resolves once the database has answered on each link (at most 5 s). */
  release (): Promise<void>
  close (): Promise<void>
}

export async function startDatabaseProxy (target: string): Promise<DatabaseProxy> {
  const { hostname, port } = new URL(target)
  const links = new Set<Link>()
  let delayMs = 0
  const server: Server = createServer((client) => {
    const upstream = connect(Number(port), hostname)
    const link: Link = { client, upstream, held: null }
    links.add(link)
    client.on('data', (chunk) => {
      if (link.held) link.held.push(chunk)
      else if (delayMs > 0) setTimeout(() => upstream.write(chunk), delayMs)
      else upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      link.answered?.()
      if (!client.destroyed) client.write(chunk)
    })
    // A held link outlives its client: what it holds is still delivered on release.
    client.on('close', () => { if (!link.held) upstream.end() })
    client.on('error', () => {})
    upstream.on('error', () => client.destroy())
    upstream.on('close', () => { links.delete(link); client.destroy() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port: proxyPort } = server.address() as AddressInfo

  return {
    url: `mongodb://127.0.0.1:${proxyPort}/?directConnection=true`,
    holdOpenConnections () {
      for (const link of links) link.held ??= []
    },
    holds (text) {
      return [...links].some((link) => link.held && Buffer.concat(link.held).includes(text))
    },
    delay (ms) {
      delayMs = ms
    },
    reset () {
      for (const link of links) { link.client.resetAndDestroy(); link.upstream.destroy() }
    },
    async release () {
      const waits: Array<Promise<void>> = []
      for (const link of links) {
        if (!link.held) continue
        const held = Buffer.concat(link.held)
        link.held = null
        if (held.length === 0) continue
        waits.push(new Promise<void>((resolve) => {
          link.answered = resolve
          setTimeout(resolve, 5000).unref()
        }))
        link.upstream.write(held)
        if (link.client.destroyed) waits.at(-1)!.then(() => link.upstream.end(), () => {})
      }
      await Promise.all(waits)
    },
    async close () {
      for (const link of links) { link.client.destroy(); link.upstream.destroy() }
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
