/** The chat domain's refusals: app.ts maps each of these to its problem. */

/** Another user's chat, an unknown one and a malformed id alike. */
export class ChatNotFoundError extends Error {
  constructor () { super('Chat not found') }
}

/** The chat is in no state for this (a reply streams, nothing to answer, nothing to stop). */
export class ChatBusyError extends Error {}

/** The user already streams as many replies as allowed. */
export class TooManyStreamsError extends Error {
  constructor (readonly max: number) { super(`At most ${max} replies can stream at once; wait for one to end`) }
}

/** This instance streams as many replies as it can hold. */
export class StreamCapacityError extends Error {
  constructor () { super('stream capacity of this instance reached') }
}

/** The provider refused before anything was streamed; its message is safe to show. */
export class AssistantRefusedError extends Error {}

/** A message id (`before` of a page) that is not a message of the chat. */
export class MessageNotFoundError extends Error {
  constructor () { super('Message not found') }
}
