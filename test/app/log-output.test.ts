/** What the process writes: readable lines for a person at a terminal in development, JSON otherwise. */
import { spawn } from 'node:child_process'
import t, { type Test } from 'tap'
import { TEST_SECRET } from '../support/app.js'
import { databaseUrl } from '../support/database.js'
import { until } from '../support/until.js'

/** server.ts in development until it listens: its output, with stdout a terminal (through `script`) or a pipe. */
async function startupOutput (t: Test, terminal: boolean) {
  const command = [process.execPath, '--import', 'tsx', 'server.ts']
  const child = terminal
    ? spawn('script', ['-qfec', command.join(' '), '/dev/null'], { env: await devEnv() })
    : spawn(command[0]!, command.slice(1), { env: await devEnv() })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  await until(() => output.includes('Server listening'), 30_000, () => `server.ts to listen:\n${output}`)
  return output.split(/\r?\n/).filter((line) => line.includes('Server listening'))[0]!
}

async function devEnv () {
  return { ...process.env, NODE_ENV: 'development', MONGODB_URL: await databaseUrl(), SECRET_KEY: TEST_SECRET, PORT: '0', FASTIFY_AUTOLOAD_TYPESCRIPT: '1' }
}

t.test('at a terminal, development logs are readable lines (pino-pretty)', async (t) => {
  const line = await startupOutput(t, true)
  t.throws(() => JSON.parse(line), 'not JSON')
  t.match(line, /INFO.*Server listening at http:\/\/127\.0\.0\.1:\d+/, 'level and message, readable')
})

t.test('into a pipe, the same process writes JSON lines', async (t) => {
  const line = await startupOutput(t, false)
  t.match(JSON.parse(line), { level: 30, msg: /^Server listening at / })
})
