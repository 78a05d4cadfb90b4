/**
 * The TypeScript client generated from the live document (openapi-typescript types for
 * openapi-fetch): it generates, the flow type-checks against it, and the flow passes.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import type { Test } from 'tap'
import { startService, WORK_DIR } from './service.js'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')
const bin = (name: string) => join(root, 'node_modules', '.bin', name)

/** Output of a command that failed, for the assertion's message. */
async function outcome (command: string, args: string[]) {
  try {
    await run(command, args, { cwd: root })
    return ''
  } catch (error) {
    const { stdout = '', stderr = '', message } = error as { stdout?: string, stderr?: string, message: string }
    return `${stdout}${stderr}`.trim() || message
  }
}

t.test('a TypeScript client generated from the document completes the flow', async (t) => {
  const service = await startService(t)
  const { file } = service.saveDocument('typescript')

  t.equal(await outcome(bin('openapi-typescript'), [file, '-o', join(WORK_DIR, 'typescript', 'schema.d.ts')]), '', 'openapi-typescript generates the types')
  t.equal(await outcome(bin('tsc'), ['-p', join(root, 'test', 'clients', 'tsconfig.json')]), '', 'the flow type-checks against the generated types')

  // A computed specifier: the root type-check must not follow it into the generated types.
  const flow = join(import.meta.dirname, 'typescript-flow.ts')
  const { runFlow } = await import(flow) as { runFlow (t: Test, context: { url: string, mailToken: typeof service.mailToken }): Promise<void> }
  await runFlow(t, { url: service.url, mailToken: service.mailToken })
})
