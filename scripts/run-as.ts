/**
 * How the embedded database's processes are launched. PostgreSQL refuses to run as root, so when
 * this process is root its programs run as the `postgres` user; and on Linux every database process
 * is ended by the kernel when this process dies (setpriv --pdeathsig), so a crashed or killed test,
 * dev or bench run leaves nothing running.
 */
import { execFileSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

function onPath (name: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

const setpriv = process.platform === 'linux' && onPath('setpriv')
const root = process.getuid?.() === 0

/** The uid and gid that own PostgreSQL's folders: the `postgres` user when root, else undefined (this user). */
export function postgresOwner (): { uid: number, gid: number } | undefined {
  if (!root) return undefined
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
    return { uid: id('-u'), gid: id('-g') }
  } catch {
    throw new Error('Running as root, PostgreSQL needs a `postgres` user to run as (the postgresql package creates it)')
  }
}

export interface Launch {
  /** Run as the `postgres` user when this process is root. */
  asPostgres?: boolean
  /** Sent by the kernel to the program when this process dies (Linux). */
  deathSignal?: 'SIGINT' | 'SIGTERM'
}

/** The file and arguments that run `bin args` as asked; setpriv execs, so the pid is the program's own. */
export function launch (bin: string, args: string[], { asPostgres = false, deathSignal }: Launch = {}): [string, string[]] {
  const switchUser = asPostgres && root
  if (switchUser && !setpriv) throw new Error('Running as root, PostgreSQL is started as the postgres user with setpriv (util-linux), which is missing')
  if (!setpriv || (!switchUser && !deathSignal)) return [bin, args]
  const options: string[] = []
  if (switchUser) {
    // Read-search permission only, so that a clone under a root-only folder (/root, mktemp -d) works
    // without changing that folder's permissions.
    options.push('--reuid=postgres', '--regid=postgres', '--init-groups',
      '--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search')
  }
  if (deathSignal) options.push(`--pdeathsig=${deathSignal}`)
  return ['setpriv', [...options, '--', bin, ...args]]
}
