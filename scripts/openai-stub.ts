/**
 * A local server speaking the OpenAI Chat Completions streaming protocol, byte for byte as OpenAI
 * sends it (role chunk, content deltas, finish chunk, usage chunk, `data: [DONE]`), with the faults
 * a provider shows: error statuses, slow first bytes, slow or dropped streams. The tests' stand-in
 * for a paid model, and the benchmark's fast upstream.
 */
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export interface UpstreamScript {
  /** Content deltas, in order. */
  pieces?: string[]
  /** Anything else answers with OpenAI's error body and no stream. */
  status?: number
  /** Before the response headers. */
  headersDelayMs?: number
  /** Before each delta. */
  pieceDelayMs?: number
  /** Destroys the connection after this many deltas. */
  dropAfter?: number
  /** Sends no usage chunk (a server ignoring `stream_options`). */
  withoutUsage?: boolean
}

export interface UpstreamRequest {
  headers: IncomingHttpHeaders
  body: {
    model: string
    messages: Array<{ role: string, content: string }>
    stream: boolean
    stream_options?: { include_usage?: boolean }
  }
  /** When the client closed the connection before the response ended (an abort), in ms since the epoch. */
  abortedAt?: number
  finished: boolean
}

export const USAGE = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 }

/** `keepRequests: false` for load: requests are not recorded. */
export async function startOpenAiStub (options: { port?: number, keepRequests?: boolean } = {}) {
  let script: (request: UpstreamRequest) => UpstreamScript = () => ({ pieces: ['Hello', ' there', '!'] })
  const requests: UpstreamRequest[] = []

  const server = createServer(async (req, res) => {
    let raw = ''
    for await (const chunk of req) raw += chunk
    const request: UpstreamRequest = { headers: req.headers, body: JSON.parse(raw), finished: false }
    if (options.keepRequests !== false) requests.push(request)
    res.on('close', () => { if (!res.writableFinished) request.abortedAt = Date.now() })
    const plan = script(request)

    if (plan.headersDelayMs) await sleep(plan.headersDelayMs)
    if (res.destroyed) return
    if (plan.status && plan.status !== 200) {
      res.writeHead(plan.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } }))
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    const base = { id: 'chatcmpl-test', object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: request.body.model, system_fingerprint: 'fp_test' }
    const chunk = (choices: unknown[], usage: unknown = null) => res.write(`data: ${JSON.stringify({ ...base, choices, usage })}\n\n`)

    chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }])
    const pieces = plan.pieces ?? []
    for (const [i, piece] of pieces.entries()) {
      if (plan.pieceDelayMs) await sleep(plan.pieceDelayMs)
      if (res.destroyed) return
      if (plan.dropAfter === i) {
        res.destroy()
        return
      }
      chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }])
    }
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }])
    if (!plan.withoutUsage && request.body.stream_options?.include_usage) chunk([], USAGE)
    res.end('data: [DONE]\n\n')
    request.finished = true
  })
  server.listen(options.port ?? 0, '127.0.0.1')
  await once(server, 'listening')
  return {
    close () {
      server.closeAllConnections()
      server.close()
    },
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    requests,
    /** What the next requests get. */
    respond (next: (request: UpstreamRequest) => UpstreamScript) { script = next }
  }
}
