/**
 * Server-sent events as a client reads them: parsing a body, and live streams over real sockets
 * (for what `inject` cannot show: a stream still open, a client that leaves, a server that cuts).
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'

export type Headers = Record<string, string>

export interface SseEvent {
  event?: string
  id?: string
  data: unknown
}

/** Server-sent events from a body: blocks split on blank lines, `data:` lines joined and parsed as JSON. */
export function parseSse (body: string): SseEvent[] {
  const events: SseEvent[] = []
  for (const block of body.split(/\r?\n\r?\n/)) {
    const fields: Record<string, string[]> = {}
    for (const line of block.split(/\r?\n/)) {
      if (line === '' || line.startsWith(':')) continue // comments (": ping") carry nothing
      const colon = line.indexOf(':')
      const name = colon === -1 ? line : line.slice(0, colon)
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
      ;(fields[name] ??= []).push(value)
    }
    if (!fields.data) continue
    events.push({ event: fields.event?.[0], id: fields.id?.[0], data: JSON.parse(fields.data.join('\n')) })
  }
  return events
}

/** The events of a body received so far that are complete (a partly received last event is left out). */
export function completeEvents (body: string): SseEvent[] {
  return parseSse(body.slice(0, body.lastIndexOf('\n\n') + 2))
}

/** The events an original client reads: unnamed ones, `{ "text", "chat_id" }`. */
export function textEvents (events: SseEvent[]) {
  return events.filter((e) => e.event === undefined).map((e) => e.data as { text: string, chat_id: string })
}

/** The concatenated texts: the reply as the client shows it. */
export function textOf (events: SseEvent[]) {
  return textEvents(events).map((e) => e.text).join('')
}

export function replyOf (body: string) {
  return textOf(parseSse(body))
}

/** The data of the events named `name`. */
export function named<T = Record<string, unknown>> (events: SseEvent[], name: string): T[] {
  return events.filter((e) => e.event === name).map((e) => e.data as T)
}

/** For `LiveSse.until`: at least `count` text events. */
export const hasText = (count: number) => (events: SseEvent[]) => textEvents(events).length >= count

/** How a live stream ended, as the client saw it. */
export interface StreamEnd {
  /** True when the server ended the response properly; false when the connection was dropped. */
  complete: boolean
  body: string
  events: SseEvent[]
}

export interface LiveSse {
  status: number
  headers: IncomingHttpHeaders
  /** Everything received so far, comments included. */
  readonly body: string
  /** The complete events received so far. */
  events (): SseEvent[]
  /** The events once `predicate` holds for them; rejects when the stream ends first or after `timeoutMs`. */
  until (predicate: (events: SseEvent[]) => boolean, timeoutMs?: number): Promise<SseEvent[]>
  /** Settles when the response ends or the connection closes, from either side. */
  readonly ended: Promise<StreamEnd>
  /** Drops the connection from the client's side (a client that leaves). */
  close (): void
}

/**
 * POSTs `payload` (or no body; GET with `method`) over a real socket and resolves once the response
 * head arrives; the stream stays open until the server ends it or `close()` is called.
 */
export async function openSse (url: string, headers: Headers, payload?: unknown, method: 'GET' | 'POST' = 'POST'): Promise<LiveSse> {
  return await new Promise<LiveSse>((resolve, reject) => {
    const body = payload === undefined ? undefined : JSON.stringify(payload)
    const req = httpRequest(url, {
      method,
      agent: false,
      headers: body === undefined
        ? headers
        : { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }
    }, (res) => {
      let text = ''
      let closed = false
      const waiters = new Set<() => void>()
      const notify = () => { for (const waiter of [...waiters]) waiter() }
      let settle!: (end: StreamEnd) => void
      const ended = new Promise<StreamEnd>((resolve) => { settle = resolve })

      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
        notify()
      })
      res.on('error', () => {}) // "aborted": the server dropped the connection; `ended` says so
      res.on('close', () => {
        closed = true
        settle({ complete: res.complete, body: text, events: completeEvents(text) })
        notify()
      })

      resolve({
        status: res.statusCode!,
        headers: res.headers,
        get body () { return text },
        events: () => completeEvents(text),
        async until (predicate, timeoutMs = 10_000) {
          return await new Promise<SseEvent[]>((resolve, reject) => {
            const finish = () => {
              clearTimeout(timer)
              waiters.delete(check)
            }
            const check = () => {
              const events = completeEvents(text)
              if (predicate(events)) {
                finish()
                resolve(events)
              } else if (closed) {
                finish()
                reject(new Error(`the stream ended first; received: ${JSON.stringify(text)}`))
              }
            }
            const timer = setTimeout(() => {
              finish()
              reject(new Error(`nothing as expected within ${timeoutMs} ms; received: ${JSON.stringify(text)}`))
            }, timeoutMs)
            waiters.add(check)
            check()
          })
        },
        ended,
        close () { req.destroy() }
      })
    })
    req.on('error', (error) => { if (!req.destroyed) reject(error) })
    req.end(body)
  })
}
