/**
 * One POST /chat/stream read to its end, as a client sees it: when `start` and the first text
 * event came, how many text events, and how it ended. A stream succeeds when it ends with `done`
 * and status `complete`.
 */
import http from 'node:http'

export type FailureKind = 'HTTP status' | 'connection error' | 'ended without done' | 'done, not complete'

export interface StreamOutcome {
  status: number
  startMs: number
  firstTextMs: number
  texts: number
  failure?: { kind: FailureKind, detail: string }
}

/** The streams of one scenario: their requests (to cut at the deadline), and counts while they run. */
export class StreamPool {
  readonly agent: http.Agent
  readonly requests = new Set<http.ClientRequest>()
  open = 0
  maxOpen = 0
  /** Streams that had their first text event, and streams that ended without any. */
  firstTexts = 0
  silent = 0
  cut = false

  constructor (streams: number) {
    this.agent = new http.Agent({ keepAlive: false, maxSockets: streams + 100 })
  }

  cutAll (): void {
    this.cut = true
    for (const request of this.requests) request.destroy(new Error('cut at the deadline'))
  }
}

const MESSAGE = JSON.stringify({ message: 'Hello from the benchmark, please stream a reply.' })

export function openStream (port: number, token: string, pool: StreamPool): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    const started = performance.now()
    const outcome: StreamOutcome = { status: 0, startMs: NaN, firstTextMs: NaN, texts: 0 }
    let doneStatus: string | undefined
    let settled = false
    let opened = false

    const classify = (error?: Error): StreamOutcome['failure'] => {
      const why = pool.cut ? 'cut at the deadline' : (error as NodeJS.ErrnoException | undefined)?.code ?? error?.message
      if (outcome.status === 0) return { kind: 'connection error', detail: why ?? 'no response' }
      if (outcome.status !== 200) return { kind: 'HTTP status', detail: `HTTP ${outcome.status}` }
      if (doneStatus === undefined) return { kind: 'ended without done', detail: why ?? 'the response ended' }
      if (doneStatus !== 'complete') return { kind: 'done, not complete', detail: `done: ${doneStatus}` }
      return undefined
    }
    const finish = (error?: Error) => {
      if (settled) return
      settled = true
      pool.requests.delete(request)
      if (opened) pool.open--
      if (outcome.texts === 0) pool.silent++
      const failure = classify(error)
      resolve(failure ? { ...outcome, failure } : outcome)
    }
    const onFrame = (frame: string) => {
      let event = 'message'
      let data = ''
      for (const line of frame.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim()
        else if (line.startsWith('data:')) data += line.slice(5).trimStart()
      }
      if (!data) return // a `: ping` comment
      if (event === 'start' && Number.isNaN(outcome.startMs)) outcome.startMs = performance.now() - started
      if (event === 'message') {
        if (outcome.texts++ === 0) {
          outcome.firstTextMs = performance.now() - started
          pool.firstTexts++
        }
      }
      if (event === 'done') {
        try {
          doneStatus = String((JSON.parse(data) as { status?: unknown }).status)
        } catch {
          doneStatus = 'unreadable'
        }
      }
    }

    const request = http.request({
      host: '127.0.0.1',
      port,
      path: '/chat/stream',
      method: 'POST',
      agent: pool.agent,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(MESSAGE) }
    }, (response) => {
      outcome.status = response.statusCode ?? 0
      if (outcome.status === 200) {
        opened = true
        pool.maxOpen = Math.max(pool.maxOpen, ++pool.open)
      }
      response.setEncoding('utf8')
      let buffer = ''
      response.on('data', (chunk: string) => {
        if (outcome.status !== 200) return
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          onFrame(buffer.slice(0, end))
          buffer = buffer.slice(end + 2)
        }
      })
      response.on('end', () => finish())
      response.on('error', (error) => finish(error))
      response.on('close', () => finish(response.complete ? undefined : new Error('closed before the end')))
    })
    pool.requests.add(request)
    request.setTimeout(30_000, () => request.destroy(new Error('no byte for 30 s')))
    request.on('error', (error) => finish(error))
    request.end(MESSAGE)
  })
}
