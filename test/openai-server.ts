import type { Test } from 'tap'
import { startOpenAiStub } from '../scripts/openai-stub.js'

export { USAGE, type UpstreamRequest, type UpstreamScript } from '../scripts/openai-stub.js'

/** The OpenAI-protocol stand-in (scripts/openai-stub.ts), closed when `t` ends. */
export async function startOpenAiServer (t: Test) {
  const stub = await startOpenAiStub()
  t.teardown(() => stub.close())
  return stub
}
