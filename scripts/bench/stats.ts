export const sum = (values: number[]) => values.reduce((a, b) => a + b, 0)
export const mean = (values: number[]) => values.length ? sum(values) / values.length : 0

export function percentile (values: number[], p: number): number {
  if (!values.length) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}
export const median = (values: number[]) => percentile(values, 50)

export const fmt = (value: number, digits = 0) => Number.isFinite(value)
  ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
  : 'n/a'

export const verdict = (ok: boolean) => ok ? 'PASS' : 'MISS'

/** Markdown table lines. */
export function table (header: string[], align: string[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `|${align.join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)]
}
