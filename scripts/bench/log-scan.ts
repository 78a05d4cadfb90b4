import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'

export interface LogScan {
  /** Error-level lines (pino level ≥ 50) and warnings (40), by message with numbers masked. */
  errors: Map<string, number>
  warnings: Map<string, number>
  beforeReady: number
}

/**
 * The error and warning lines of a service log. Lines from before `since` (the bench's own
 * GET /health/ready polls while the service starts) are only counted in `beforeReady`.
 */
export async function scanLog (path: string | undefined, since: number): Promise<LogScan> {
  const result: LogScan = { errors: new Map(), warnings: new Map(), beforeReady: 0 }
  if (!path) return result
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity })
  for await (const line of lines) {
    const level = /"level":(\d+)/.exec(line)?.[1]
    if (!level || Number(level) < 40) continue
    let kind: string
    try {
      const entry = JSON.parse(line) as { msg?: string, time?: string, err?: { message?: string } }
      if (entry.time && Date.parse(entry.time) < since) {
        result.beforeReady++
        continue
      }
      kind = `${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message}` : ''}`
    } catch {
      kind = line
    }
    kind = kind.replace(/\d+/g, 'N').slice(0, 160)
    const into = Number(level) >= 50 ? result.errors : result.warnings
    into.set(kind, (into.get(kind) ?? 0) + 1)
  }
  return result
}

const total = (kinds: Map<string, number>) => [...kinds.values()].reduce((a, b) => a + b, 0)
const top = (kinds: Map<string, number>) => [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k, n]) => `${n}× "${k}"`).join('; ')

/** Problems for the list at the end: error lines, and warnings (which say why a stream failed). */
export function logProblems (who: string, scan: LogScan): string[] {
  const problems: string[] = []
  if (scan.errors.size) problems.push(`${who} logged ${total(scan.errors)} error lines: ${top(scan.errors)}`)
  if (scan.warnings.size) problems.push(`${who} logged ${total(scan.warnings)} warnings: ${top(scan.warnings)}`)
  return problems
}
