/** Chat requests shared by the chat route tests (not a test file itself). */
import type { TestApp } from '../helper.js'
import type { Headers } from '../sse.js'

export async function createChat (app: TestApp, headers: Headers, payload: Record<string, unknown> = {}) {
  const res = await app.inject({ method: 'POST', url: '/chat/', headers, payload })
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** POST /chat/stream through inject: the whole stream, once it has ended. */
export async function stream (app: TestApp, headers: Headers, payload: Record<string, unknown>) {
  return await app.inject({ method: 'POST', url: '/chat/stream', headers, payload })
}
