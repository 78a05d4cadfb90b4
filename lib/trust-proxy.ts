import { isIP } from 'node:net'

const names = new Set(['loopback', 'linklocal', 'uniquelocal'])

function isProxyEntry (entry: string): boolean {
  const [address = '', bits, ...rest] = entry.split('/')
  if (names.has(address) && bits === undefined) return true
  const version = isIP(address)
  if (version === 0 || rest.length > 0) return false
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128))
}

/**
 * TRUST_PROXY as Fastify's `trustProxy` takes it: unset or `false` is off, `true` trusts any peer,
 * else a comma-separated list of addresses and CIDR ranges (and proxy-addr's names). Undefined for
 * anything else, a hop count included: Fastify 5.12 trusts no peer for one (a direct client could
 * send the hops itself), so it would silently change nothing.
 */
export function trustProxy (value: string | undefined): boolean | string | undefined {
  if (value === undefined || value === '' || value === 'false') return false
  if (value === 'true') return true
  const entries = value.split(',').map((entry) => entry.trim())
  return entries.every(isProxyEntry) ? entries.join(',') : undefined
}
