/** CPU time of processes, from /proc (Linux), for the bench and database measurements. */
import { readdirSync, readFileSync } from 'node:fs'

const CLOCK_TICKS = 100

/** The fields after the command name (which is in parentheses and may hold spaces): state is [0], ppid [1]. */
function stat (pid: number | string): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return text.slice(text.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/**
 * CPU time (user + system) a process has used so far, in ms; 0 when it cannot be read. With `tree`,
 * also that of its descendants: the live ones, and the exited ones waited for (PostgreSQL's
 * postmaster and the backend it forks for each connection).
 */
export function cpuMs (pid: number | undefined, tree = false): number {
  if (pid === undefined) return 0
  const own = stat(pid)
  if (!own) return 0
  if (!tree) return (Number(own[11]) + Number(own[12])) * 1000 / CLOCK_TICKS
  const children = new Map<string, Array<{ pid: string, fields: string[] }>>()
  for (const entry of readdirSync('/proc')) {
    const fields = /^\d+$/.test(entry) ? stat(entry) : undefined
    if (!fields) continue
    const siblings = children.get(fields[1]!) ?? []
    siblings.push({ pid: entry, fields })
    children.set(fields[1]!, siblings)
  }
  const sum = (fields: string[], id: string): number =>
    Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]) +
    (children.get(id) ?? []).reduce((total, child) => total + sum(child.fields, child.pid), 0)
  return sum(own, String(pid)) * 1000 / CLOCK_TICKS
}
