/** An app whose assistant is the OpenAI-protocol stand-in (scripts/openai-stub.ts). */
import type { Test } from 'tap'
import { startOpenAiStub } from '../../scripts/openai-stub.js'
import { build } from './app.js'

export { USAGE, type UpstreamRequest } from '../../scripts/openai-stub.js'

/** An app with ASSISTANT_PROVIDER=openai pointed at a fresh stand-in (`upstream`), closed when `t` ends. */
export async function openAiApp (t: Test, overrides: Record<string, string> = {}) {
  const upstream = await startOpenAiStub()
  t.teardown(() => upstream.close())
  const app = await build(t, {
    ASSISTANT_PROVIDER: 'openai',
    ASSISTANT_BASE_URL: upstream.url,
    ASSISTANT_API_KEY: 'sk-test-secret-key',
    ASSISTANT_MODEL: 'gpt-test',
    ...overrides
  })
  return { upstream, app }
}
