import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import type { Role } from '../../schemas/chat.js'

export interface ContextMessage {
  role: Role
  content: string
}

/** Produces a reply to a conversation, piece by piece; stops when `signal` aborts. */
export interface Assistant {
  reply (messages: ContextMessage[], signal: AbortSignal): AsyncIterable<string>
}

declare module 'fastify' {
  interface FastifyInstance {
    assistant: Assistant
  }
}

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

/** The original's pace: one word plus a space per piece, every `delayMs`. */
export function createDemoAssistant (delayMs: number): Assistant {
  return {
    async * reply (_messages, signal) {
      for (const word of demoReply()) {
        if (delayMs > 0) await sleep(delayMs, undefined, { signal })
        else await yieldToLoop(undefined, { signal })
        yield `${word} `
      }
    }
  }
}

export default fp(async function assistant (fastify) {
  const { ASSISTANT_PROVIDER, ASSISTANT_WORD_DELAY_MS } = fastify.config
  if (ASSISTANT_PROVIDER !== 'demo') throw new Error(`ASSISTANT_PROVIDER=${ASSISTANT_PROVIDER} is not available in this version; use demo`)
  fastify.decorate('assistant', createDemoAssistant(ASSISTANT_WORD_DELAY_MS))
}, { name: 'assistant', dependencies: ['env'] })
