/** Path segments that carry one-time tokens, and query keys that carry secrets or addresses. */
const tokenInPath = /(\/auth\/(?:verify|reset-password)\/)[^/?#]+/gi
const secretQueryKeys = new Set(['token', 'new_password', 'password', 'email', 'access_token', 'refresh_token'])

/** The URL as it may be logged: no token from a mail link, no password from a query string. */
export function redactUrl (url: string): string {
  const [path = '', query] = splitOnce(url, '?')
  const safePath = path.replace(tokenInPath, '$1[redacted]')
  if (query === undefined) return safePath
  const safeQuery = query.split('&').map((pair) => {
    const [key = ''] = splitOnce(pair, '=')
    let name = key
    try { name = decodeURIComponent(key.replace(/\+/g, ' ')).toLowerCase() } catch {}
    return secretQueryKeys.has(name) ? `${key}=[redacted]` : pair
  }).join('&')
  return `${safePath}?${safeQuery}`
}

function splitOnce (s: string, separator: string): [string, string | undefined] {
  const i = s.indexOf(separator)
  return i === -1 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)]
}

/** Body and header fields never logged, wherever they appear in a log object. */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'password', '*.password', 'new_password', '*.new_password', 'current_password', '*.current_password',
  'token', '*.token', 'access_token', '*.access_token', 'refresh_token', '*.refresh_token', 'link', '*.link'
]
