import { AssistantError, type Assistant, type AssistantEvent, type ContextMessage } from './types.js'

const demoSentences = [
  'Thanks for your message, here is a demo reply streamed one word at a time.',
  'This service is running its built-in demo assistant, so no model was asked.',
  'Point ASSISTANT_PROVIDER at a real model to get answers that fit your question.',
  'Every piece you see arrives as its own server-sent event on the open stream.',
  'The whole reply is stored with the chat once it ends, even if you leave early.',
  'Streaming keeps the first word fast while the rest of the answer is still coming.',
  'You can continue this chat by sending its id with the next message.'
]
/** Each sentence as pieces, a word and a space each, made once: every reply shares these strings. */
const demoPieces = demoSentences.map((sentence) => sentence.split(' ').map((word) => `${word} `))

/** The pieces of a reply (a word and a space each): 20 to 40 words from the demo sentences, starting at a random one. */
export function demoReply (random = Math.random): string[] {
  const target = 20 + Math.floor(random() * 21)
  const pieces: string[] = []
  for (let i = Math.floor(random() * demoPieces.length); pieces.length < target; i++) {
    for (const piece of demoPieces[i % demoPieces.length]!) if (pieces.length < target) pieces.push(piece)
  }
  return pieces
}

/** Words sent before `[error]` fails or `[cut]` drops the connection. */
export const DEMO_WORDS_BEFORE_FAILURE = 5
/** The pace of `[slow]`. */
export const DEMO_SLOW_DELAY_MS = 1000

/**
 * Directives in the newest user message, for client developers testing their handling of
 * slow, failed and broken streams: `[slow]` one word a second, `[fail]` the provider refuses
 * (502 before the stream), `[error]` it fails after a few words, `[cut]` the connection drops
 * after a few words with no terminal event.
 */
export function demoDirectives (messages: ContextMessage[]) {
  const text = messages.findLast((m) => m.role === 'user')?.content ?? ''
  return {
    slow: text.includes('[slow]'),
    fail: text.includes('[fail]'),
    error: text.includes('[error]'),
    cut: text.includes('[cut]')
  }
}

/**
 * Waits between pieces, and no longer once `signal` aborts. One abort listener for the whole
 * reply: node:timers/promises would add one to the signal and remove it again for every word.
 */
class Pacer {
  private wake: (() => void) | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly onAbort = () => {
    clearTimeout(this.timer)
    this.wake?.()
  }

  constructor (private readonly signal: AbortSignal) {
    signal.addEventListener('abort', this.onAbort, { once: true })
  }

  wait (ms: number) {
    return new Promise<void>((resolve) => {
      if (this.signal.aborted) return resolve()
      this.wake = resolve
      if (ms > 0) this.timer = setTimeout(resolve, ms)
      else setImmediate(resolve)
    })
  }

  stop () {
    this.signal.removeEventListener('abort', this.onAbort)
  }
}

// One generator function for every reply (a function made per reply brings its own prototype and hidden class).
async function * demoStream (directives: ReturnType<typeof demoDirectives>, pace: number, signal: AbortSignal): AsyncGenerator<AssistantEvent> {
  const pacer = new Pacer(signal)
  try {
    let sent = 0
    for (const text of demoReply()) {
      await pacer.wait(pace)
      if (signal.aborted) return
      if (sent === DEMO_WORDS_BEFORE_FAILURE) {
        if (directives.error) throw new AssistantError('The assistant failed mid-reply (demo [error])')
        if (directives.cut) throw new AssistantError('Connection cut (demo [cut])', { dropConnection: true })
      }
      yield { text }
      sent++
    }
  } finally {
    pacer.stop()
  }
}

/** The original's pace: one word plus a space per piece, every `delayMs`. */
export function createDemoAssistant (delayMs: number): Assistant {
  return {
    async start ({ messages, signal }) {
      const directives = demoDirectives(messages)
      if (directives.fail) throw new AssistantError('The assistant is unavailable (demo [fail])')
      return demoStream(directives, directives.slow ? DEMO_SLOW_DELAY_MS : delayMs, signal)
    }
  }
}
