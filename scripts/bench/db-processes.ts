/**
 * The processes the database runs in, for its CPU time: FerretDB, and with the PostgreSQL backend
 * the cluster FerretDB stores into (the postmaster and every process under it). The cluster is
 * found by a scan of /proc: a `postgres` process whose parent is not one, started from this run
 * (its ancestry reaches this process) or working in a data directory the database object names.
 * Backends come and go, so the tree is read anew at each sample; an exited backend's CPU is in its
 * parent's cutime/cstime, which is counted too.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { procStat, type ProcStat } from './probes.js'

export interface DatabaseProcesses {
  /** 'pg' or 'sqlite' (FerretDB's backend), or 'external' for MONGODB_URL. */
  backend: string
  /** False when nothing is measured (MONGODB_URL). */
  measured: boolean
  describe: string
  /** CPU used so far by every process of the database, ms. */
  cpuMs (): number
}

interface StartedDatabase { process: { pid?: number }, [field: string]: unknown }

function allProcesses (): ProcStat[] {
  const list: ProcStat[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const stat = procStat(Number(name))
    if (stat) list.push(stat)
  }
  return list
}

/** Absolute paths among the object's values (one level deep): the data directories it may name. */
function pathsIn (value: unknown, depth = 0): string[] {
  if (typeof value === 'string') return value.startsWith('/') ? [value.replace(/\/+$/, '')] : []
  if (!value || typeof value !== 'object' || depth > 1 || 'pid' in value) return []
  return Object.values(value).flatMap((v) => pathsIn(v, depth + 1))
}

function dataDirOf (pid: number): string | null {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    const flag = args.indexOf('-D')
    if (flag !== -1 && args[flag + 1]) return args[flag + 1]!.replace(/\/+$/, '')
  } catch {}
  try {
    return readlinkSync(`/proc/${pid}/cwd`) // the postmaster works in its data directory
  } catch {
    return null
  }
}

function postmasters (db: StartedDatabase): Array<{ pid: number, dataDir: string | null }> {
  const processes = allProcesses()
  const byPid = new Map(processes.map((p) => [p.pid, p]))
  const paths = pathsIn(db)
  const fromThisRun = (pid: number) => {
    for (let p = byPid.get(pid); p && p.pid > 1; p = byPid.get(p.ppid)) if (p.pid === process.pid) return true
    return false
  }
  const named = (dir: string | null) => dir !== null && paths.some((path) => dir === path || dir.startsWith(`${path}/`) || path.startsWith(`${dir}/`))
  return processes
    .filter((p) => p.comm === 'postgres' && byPid.get(p.ppid)?.comm !== 'postgres')
    .map((p) => ({ pid: p.pid, dataDir: dataDirOf(p.pid) }))
    .filter((p) => fromThisRun(p.pid) || named(p.dataDir))
}

/** Sum of CPU (with reaped children) of the roots and every live process under them. */
function treeCpuMs (roots: number[]): number {
  const processes = allProcesses()
  const children = new Map<number, ProcStat[]>()
  for (const p of processes) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p])
  const byPid = new Map(processes.map((p) => [p.pid, p]))
  let total = 0
  const seen = new Set<number>()
  const visit = (p: ProcStat | undefined) => {
    if (!p || seen.has(p.pid)) return
    seen.add(p.pid)
    total += p.cpuMs
    for (const child of children.get(p.pid) ?? []) visit(child)
  }
  for (const pid of roots) visit(byPid.get(pid))
  return total
}

export function databaseProcesses (db: StartedDatabase | null): DatabaseProcesses {
  if (!db) return { backend: 'external', measured: false, describe: 'MONGODB_URL (its CPU is not measured)', cpuMs: () => 0 }
  const backend = String((db as { backend?: string }).backend ?? 'sqlite')
  const ferretdb = db.process.pid
  const cluster = backend === 'sqlite' ? [] : postmasters(db)
  const roots = [...(ferretdb ? [ferretdb] : []), ...cluster.map((p) => p.pid)]
  const clusterText = cluster.length
    ? ` + PostgreSQL ${cluster.map((p) => `postmaster pid ${p.pid}${p.dataDir ? ` (${p.dataDir})` : ''}`).join(', ')} and its processes`
    : backend === 'sqlite' ? '' : ' (NOTE: no PostgreSQL postmaster found; its CPU is not counted)'
  return {
    backend,
    measured: true,
    describe: `FerretDB pid ${ferretdb}${clusterText}`,
    cpuMs: () => treeCpuMs(roots)
  }
}
