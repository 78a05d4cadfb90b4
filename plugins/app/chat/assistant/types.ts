import type { Role, Usage } from '../../../../schemas/chat.js'

export interface ContextMessage {
  role: Role
  content: string
}

export type AssistantEvent = { text: string } | { usage: Usage }

export interface ReplyRequest {
  messages: ContextMessage[]
  /** The chat's model; the provider's default when null. */
  model: string | null
  /** Aborts the upstream call at once: client gone, stop, session ended, shutdown. */
  signal: AbortSignal
}

/**
 * A model behind the chat. `start` resolves once the provider has accepted the request (so a
 * refusal can still be answered with a 502 before any stream byte), then yields the reply.
 */
export interface Assistant {
  start (request: ReplyRequest): Promise<AsyncIterable<AssistantEvent>>
}

/** A provider failure; `message` is safe to show to the client. */
export class AssistantError extends Error {
  /** End the client's connection without a terminal event (a broken stream, for clients to test against). */
  readonly dropConnection: boolean

  constructor (message: string, options: { cause?: unknown, dropConnection?: boolean } = {}) {
    super(message, { cause: options.cause })
    this.name = 'AssistantError'
    this.dropConnection = options.dropConnection ?? false
  }
}
