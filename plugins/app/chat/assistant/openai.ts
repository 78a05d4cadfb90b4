import { EventSourceParserStream } from 'eventsource-parser/stream'
import type { Usage } from '../../../../schemas/chat.js'
import { AssistantError, type Assistant, type AssistantEvent } from './types.js'

export interface OpenAiOptions {
  /** e.g. https://api.openai.com/v1 or http://localhost:11434/v1 (Ollama). */
  baseUrl: string
  apiKey?: string
  /** Used when the chat names no model. */
  defaultModel: string
  /** Longest wait for the response headers, and for each chunk after them. */
  timeoutMs: number
}

interface Chunk {
  choices?: Array<{ delta?: { content?: string | null } }>
  usage?: Usage | null
  error?: { message?: string }
}

/** Aborts its signal when `reset` is not called for `ms`: a first-byte and between-chunks limit. */
class SilenceTimer {
  private readonly controller = new AbortController()
  private timer: NodeJS.Timeout
  readonly signal = this.controller.signal

  constructor (private readonly ms: number) {
    this.timer = this.arm()
  }

  private arm () {
    return setTimeout(() => this.controller.abort(new Error(`no answer for ${this.ms} ms`)), this.ms)
  }

  reset () {
    clearTimeout(this.timer)
    this.timer = this.arm()
  }

  stop () {
    clearTimeout(this.timer)
  }
}

function parseChunk (data: string): Chunk {
  try {
    return JSON.parse(data) as Chunk
  } catch (cause) {
    throw new AssistantError('The assistant sent an unreadable reply', { cause })
  }
}

function isUsage (usage: unknown): usage is Usage {
  const u = usage as Usage | null | undefined
  return typeof u?.prompt_tokens === 'number' && typeof u.completion_tokens === 'number' && typeof u.total_tokens === 'number'
}

/**
 * Any server speaking the OpenAI Chat Completions streaming protocol (OpenAI, Ollama, vLLM,
 * llama.cpp, LM Studio...), over the built-in fetch: the caller's AbortSignal goes to the HTTP
 * request, so a disconnect or a stop closes the upstream connection at once.
 */
export function createOpenAiAssistant (options: OpenAiOptions): Assistant {
  const url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' }
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`

  /** The error to raise for a failed call: the caller's own abort stays as it is. */
  function failure (error: unknown, signal: AbortSignal, silence: SilenceTimer, what: string): unknown {
    if (signal.aborted || error instanceof AssistantError) return error
    if (silence.signal.aborted) return new AssistantError(`The assistant did not answer within ${options.timeoutMs / 1000} s`, { cause: error })
    return new AssistantError(what, { cause: error })
  }

  async function * relay (body: ReadableStream<Uint8Array>, signal: AbortSignal, silence: SilenceTimer): AsyncGenerator<AssistantEvent> {
    let finished = false
    try {
      const events = body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream())
      for await (const event of events) {
        silence.reset()
        if (event.data === '[DONE]') {
          finished = true
          break
        }
        const chunk = parseChunk(event.data)
        if (chunk.error) throw new AssistantError('The assistant failed mid-reply', { cause: new Error(chunk.error.message ?? 'error chunk') })
        const text = chunk.choices?.[0]?.delta?.content
        if (typeof text === 'string' && text !== '') yield { text }
        if (isUsage(chunk.usage)) yield { usage: chunk.usage }
      }
    } catch (error) {
      throw failure(error, signal, silence, 'The assistant connection was lost mid-reply')
    } finally {
      silence.stop()
    }
    if (!finished) throw new AssistantError('The assistant connection was lost mid-reply')
  }

  return {
    async start ({ messages, model, signal }) {
      const silence = new SilenceTimer(options.timeoutMs)
      let response: Response
      try {
        response = await fetch(url, {
          method: 'POST',
          headers,
          body: JSON.stringify({
            model: model ?? options.defaultModel,
            messages,
            stream: true,
            stream_options: { include_usage: true }
          }),
          signal: AbortSignal.any([signal, silence.signal])
        })
      } catch (error) {
        silence.stop()
        throw failure(error, signal, silence, 'The assistant could not be reached')
      }
      if (!response.ok || !response.body) {
        const text = await response.text().catch(() => '')
        silence.stop()
        throw new AssistantError(`The assistant answered HTTP ${response.status}`, { cause: new Error(text.slice(0, 500)) })
      }
      silence.reset()
      return relay(response.body, signal, silence)
    }
  }
}
