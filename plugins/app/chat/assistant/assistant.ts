import fp from 'fastify-plugin'
import { createDemoAssistant } from './demo.js'
import { createOpenAiAssistant } from './openai.js'
import type { Assistant } from './types.js'

declare module 'fastify' {
  interface FastifyInstance {
    assistant: Assistant
  }
}

/** The provider chosen by ASSISTANT_PROVIDER (the env plugin has checked its settings). */
export default fp(async function assistant (fastify) {
  const config = fastify.config
  fastify.decorate('assistant', config.ASSISTANT_PROVIDER === 'openai'
    ? createOpenAiAssistant({
      baseUrl: config.ASSISTANT_BASE_URL!,
      apiKey: config.ASSISTANT_API_KEY,
      defaultModel: config.ASSISTANT_MODEL!,
      timeoutMs: config.ASSISTANT_TIMEOUT_SECONDS * 1000
    })
    : createDemoAssistant(config.ASSISTANT_WORD_DELAY_MS))
}, { name: 'assistant', dependencies: ['env'] })
