/**
 * `tsx scripts/client-tools.ts`: the Python tools `npm run test:clients` uses (openapi-python-client,
 * schemathesis), in a virtual environment at .clients/venv with the exact versions of
 * test/clients/requirements.txt. Installs once; again only when the requirements change.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
export const VENV = join(root, '.clients', 'venv')
export const venvBin = (name: string) => join(VENV, 'bin', name)

const requirements = join(root, 'test', 'clients', 'requirements.txt')

export function installClientTools () {
  const wanted = createHash('sha256').update(readFileSync(requirements)).digest('hex')
  const stamp = join(VENV, 'requirements.sha256')
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted && existsSync(venvBin('python'))) return
  const python = process.env.PYTHON ?? 'python3'
  console.error(`Installing the Python client tools into ${VENV} ...`)
  execFileSync(python, ['-m', 'venv', '--clear', VENV], { stdio: 'inherit' })
  execFileSync(venvBin('python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirements], { stdio: 'inherit' })
  writeFileSync(stamp, wanted)
}

if (import.meta.url === `file://${process.argv[1]}`) installClientTools()
