/**
 * The Python client generated from the live document (openapi-python-client): it generates,
 * imports, and python_flow.py passes every check through it.
 */
import { execFile, spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import t from 'tap'
import { venvBin } from '../../scripts/client-tools.js'
import { startService } from './service.js'

const run = promisify(execFile)
const here = import.meta.dirname

/** A line of python_flow.py: a check (`ok`, or `found` to compare with `wanted`), a mail wanted, or the end. */
interface FlowLine {
  check?: string
  ok?: boolean
  found?: unknown
  wanted?: unknown
  mail?: { email: string, subject: string }
  done?: boolean
}

t.test('a Python client generated from the document completes the flow', async (t) => {
  const service = await startService(t)
  const { dir, file } = service.saveDocument('python')
  const output = join(dir, 'chat_api_client')
  rmSync(output, { recursive: true, force: true })

  const generated = await run(venvBin('openapi-python-client'), [
    'generate', '--path', file, '--output-path', output, '--meta', 'none', '--config', join(here, 'openapi-python-client.yaml')
  ]).then(({ stdout, stderr }) => `${stdout}${stderr}`, (error: { stdout?: string, stderr?: string }) => `failed: ${error.stdout}${error.stderr}`)
  t.notMatch(generated.replaceAll(output, ''), /failed|warning|error/i, 'openapi-python-client generates the client without a warning', { output: generated })

  const flow = spawn(venvBin('python'), [join(here, 'python_flow.py'), service.url], {
    env: { ...process.env, PYTHONPATH: dir, PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  t.teardown(() => { flow.kill() })
  let stderr = ''
  flow.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => flow.once('exit', resolve))
  let done = false
  for await (const text of createInterface({ input: flow.stdout })) {
    const line = JSON.parse(text) as FlowLine
    if (line.mail) flow.stdin.write(`${await service.mailToken(line.mail.email, line.mail.subject)}\n`)
    else if (line.check && 'wanted' in line) t.same(line.found, line.wanted, line.check)
    else if (line.check) t.ok(line.ok, line.check, { found: line.found })
    else if (line.done) done = true
  }
  t.equal(await exited, 0, 'the Python flow exits cleanly', { stderr })
  t.ok(done, 'the Python flow ran to its end')
})
