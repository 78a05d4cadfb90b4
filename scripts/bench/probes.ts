/** What the bench reads about processes: RSS, CPU time (from /proc) and a child's memory after a full GC. */
import { readFileSync } from 'node:fs'
import { ask, type Child } from './children.js'

const CLOCK_TICKS = 100

export function rssKb (pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : 0
  } catch {
    return 0
  }
}

export interface MemoryProbe { gc: boolean, rss: number, heapUsed: number, external: number, arrayBuffers: number }

/** The child's memory after a full GC (scripts/bench/server.ts answers over IPC); null if it does not answer in 5 s. */
export async function memoryProbe (child: Child): Promise<MemoryProbe | null> {
  return await ask<MemoryProbe>(child, 'memory')
}

/** Busy CPU time of the whole machine so far (all CPUs, not idle or iowait), in ms. */
export function systemBusyMs (): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
  // user nice system idle iowait irq softirq steal (guest time is already inside user and nice)
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = ticks.reduce((a, b) => a + b, 0)
  return (total - (ticks[3] ?? 0) - (ticks[4] ?? 0)) * 1000 / CLOCK_TICKS
}

export interface ProcStat { pid: number, comm: string, ppid: number, /** own CPU and that of its waited-for children, ms */ cpuMs: number, ownCpuMs: number }

/** /proc/<pid>/stat, or null when the process is gone. */
export function procStat (pid: number): ProcStat | null {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  const close = stat.lastIndexOf(')')
  const comm = stat.slice(stat.indexOf('(') + 1, close)
  // After the comm: state ppid ... utime(12th) stime cutime cstime
  const fields = stat.slice(close + 2).split(' ')
  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]))
  return {
    pid,
    comm,
    ppid: Number(fields[1]),
    ownCpuMs: (utime! + stime!) * 1000 / CLOCK_TICKS,
    cpuMs: (utime! + stime! + cutime! + cstime!) * 1000 / CLOCK_TICKS
  }
}

/** CPU time (user + system) a process has used so far, in ms; 0 when it cannot be read. */
export function cpuMs (pid: number | undefined): number {
  if (pid === undefined) return 0
  if (pid === process.pid) {
    const usage = process.cpuUsage()
    return (usage.user + usage.system) / 1000
  }
  return procStat(pid)?.ownCpuMs ?? 0
}
