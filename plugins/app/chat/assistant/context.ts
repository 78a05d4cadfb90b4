import type { ContextMessage } from './types.js'

/**
 * What the assistant is given: the system prompt, the earlier messages that fit in `budgetChars`
 * (newest kept, oldest dropped first), then the message to answer. The system prompt and that
 * message always go, whatever their size. `earlier` is newest first, as the database reads it,
 * and may be an async source so a long chat is read only as far as the budget goes.
 */
export async function fitContext (systemPrompt: string | null | undefined, earlier: AsyncIterable<ContextMessage> | Iterable<ContextMessage>,
  last: ContextMessage, budgetChars: number): Promise<ContextMessage[]> {
  const system = systemPrompt ? [{ role: 'system' as const, content: systemPrompt }] : []
  let budget = budgetChars - (systemPrompt?.length ?? 0) - last.content.length
  const kept: ContextMessage[] = []
  for await (const message of earlier) {
    budget -= message.content.length
    if (budget < 0) break
    kept.push({ role: message.role, content: message.content })
  }
  return [...system, ...kept.reverse(), last]
}
