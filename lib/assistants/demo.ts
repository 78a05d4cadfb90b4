import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises'
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

/** 20 to 40 words from the demo sentences, starting at a random one. */
export function demoReply (random = Math.random): string[] {
  const target = 20 + Math.floor(random() * 21)
  const words: string[] = []
  let i = Math.floor(random() * demoSentences.length)
  while (words.length < target) {
    words.push(...demoSentences[i % demoSentences.length]!.split(' '))
    i++
  }
  return words.slice(0, target)
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

/** The original's pace: one word plus a space per piece, every `delayMs`. */
export function createDemoAssistant (delayMs: number): Assistant {
  return {
    async start ({ messages, signal }) {
      const directives = demoDirectives(messages)
      if (directives.fail) throw new AssistantError('The assistant is unavailable (demo [fail])')
      const pace = directives.slow ? DEMO_SLOW_DELAY_MS : delayMs

      return (async function * (): AsyncGenerator<AssistantEvent> {
        let sent = 0
        for (const word of demoReply()) {
          if (pace > 0) await sleep(pace, undefined, { signal })
          else await yieldToLoop(undefined, { signal })
          if (sent === DEMO_WORDS_BEFORE_FAILURE) {
            if (directives.error) throw new AssistantError('The assistant failed mid-reply (demo [error])')
            if (directives.cut) throw new AssistantError('Connection cut (demo [cut])', { dropConnection: true })
          }
          yield { text: `${word} ` }
          sent++
        }
      })()
    }
  }
}
