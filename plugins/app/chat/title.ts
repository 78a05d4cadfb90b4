export const TITLE_MAX_CHARS = 60

/**
 * The start of the first message, at most 60 characters, cut at a word boundary when there is one;
 * null (untitled) for a message of only white space.
 */
export function titleFrom (message: string): string | null {
  const text = message.replace(/\s+/g, ' ').trim()
  if (text === '') return null
  const chars = [...text]
  if (chars.length <= TITLE_MAX_CHARS) return text
  const head = chars.slice(0, TITLE_MAX_CHARS + 1).join('')
  const cut = head.lastIndexOf(' ')
  return cut > 0 ? head.slice(0, cut) : chars.slice(0, TITLE_MAX_CHARS).join('')
}
