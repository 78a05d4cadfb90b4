import type { DatabaseProcesses } from './db-processes.js'

/** What every phase gets: the database, and the service's environment. */
export interface BenchContext {
  mongodbUrl: string
  databaseName: string
  db: DatabaseProcesses
  /** The service's settings for the bench, with `extra` on top. */
  serviceEnv (extra?: Record<string, string>): Record<string, string>
}

/** A phase's report: table lines, and problems for the list at the end. */
export interface Phase {
  lines: string[]
  problems: string[]
}
