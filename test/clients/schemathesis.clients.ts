/**
 * schemathesis with all its checks and phases (stateful included) against the live service, read
 * from its NDJSON report: one assertion per check, failing on any finding that is not one of the
 * documented false positives of schemathesis-false-positives.ts.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { venvBin } from '../../scripts/client-tools.js'
import { PASSWORD, uniqueEmail } from '../support/users.js'
import { explainedBy, type Finding } from './schemathesis-false-positives.js'
import { startService, WORK_DIR } from './service.js'

/** A fixed seed keeps CI's runs comparable; SCHEMATHESIS_SEED explores elsewhere. */
const SEED = process.env.SCHEMATHESIS_SEED ?? '20261202'

interface CheckRecord { name: string, status: string, failure_info?: { failure: { code: string, title: string, operation: string, message: string } } }
interface Interaction { response?: { status_code: number, content?: { $base64?: string } } }
interface Scenario {
  phase: string
  status: string
  recorder: { label: string, checks: Record<string, CheckRecord[]>, interactions: Record<string, Interaction> }
}

function bodyOf (interaction: Interaction | undefined): unknown {
  const base64 = interaction?.response?.content?.$base64
  if (!base64) return undefined
  try {
    return JSON.parse(Buffer.from(base64, 'base64').toString('utf8'))
  } catch {
    return undefined
  }
}

/** Every check run, by check, and the findings, from schemathesis's NDJSON events. */
function readReport (file: string) {
  const runs = new Map<string, number>()
  const findings: Finding[] = []
  const events = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, any>)
  for (const event of events) {
    const scenario = event.ScenarioFinished as Scenario | undefined
    if (!scenario) continue
    for (const [caseId, checks] of Object.entries(scenario.recorder.checks ?? {})) {
      for (const check of checks) {
        runs.set(check.name, (runs.get(check.name) ?? 0) + 1)
        const failure = check.failure_info?.failure
        if (check.status !== 'failure' || !failure) continue
        const interaction = scenario.recorder.interactions?.[caseId]
        findings.push({
          check: check.name,
          code: failure.code,
          title: failure.title,
          operation: failure.operation,
          phase: scenario.phase,
          status: interaction?.response?.status_code,
          body: bodyOf(interaction),
          message: failure.message
        })
      }
    }
  }
  const errors = events.filter((event) => event.NonFatalError || event.FatalError)
  const phases = events.flatMap((event) => event.PhaseFinished ? [[event.PhaseFinished.phase.name, event.PhaseFinished.status]] : [])
  return { runs, findings, errors, phases: Object.fromEntries(phases) as Record<string, string>, finished: events.some((e) => e.EngineFinished) }
}

t.test('schemathesis finds nothing but documented false positives', async (t) => {
  // Password checks that schemathesis fails on purpose must not lock its own account out.
  const service = await startService(t, { LOGIN_MAX_FAILURES: '1000' })
  const email = uniqueEmail('schemathesis')
  const registered = await service.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  t.ok(registered.statusCode < 300, 'the account schemathesis signs in with is registered')

  const dir = join(WORK_DIR, 'schemathesis')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const report = join(dir, 'events.ndjson')
  const st = spawn(venvBin('st'), [
    '--config-file', join(import.meta.dirname, 'schemathesis.toml'),
    'run', `${service.url}/openapi.json`, '--url', service.url,
    '--checks', 'all',
    '--phases', 'examples,coverage,fuzzing,stateful',
    '--seed', SEED,
    '--generation-database', 'none',
    '--report', 'ndjson', '--report-ndjson-path', report,
    '--no-color'
  ], {
    cwd: dir,
    env: { ...process.env, SCHEMATHESIS_USERNAME: email, SCHEMATHESIS_PASSWORD: PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { st.kill() })
  let output = ''
  st.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  st.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const status = await new Promise<number | null>((resolve) => st.once('exit', resolve))
  const summary = output.slice(output.lastIndexOf('SUMMARY')).trim()

  const { runs, findings, errors, phases, finished } = readReport(report)
  t.ok(finished && (status === 0 || status === 1), `schemathesis ran to its end (exit ${status}, seed ${SEED})`, { summary })
  t.same(errors, [], 'schemathesis met no error')
  for (const phase of ['examples', 'coverage', 'fuzzing', 'stateful']) {
    t.ok(phases[phase] === 'success' || phases[phase] === 'failure', `the ${phase} phase ran (${phases[phase]})`)
  }

  for (const [check, count] of [...runs].sort()) {
    const failures = findings.filter((finding) => finding.check === check)
    const unexplained = failures.filter((finding) => !explainedBy(finding))
    const explained = failures.length - unexplained.length
    t.same(unexplained.map(describe), [], `${check}: ${count} runs, no failure${explained ? ` (${explained} documented false positives)` : ''}`)
  }
})

function describe (finding: Finding) {
  const detail = (finding.body as { detail?: unknown } | undefined)?.detail
  return `${finding.code} ${finding.title}: ${finding.operation} answered ${finding.status}${typeof detail === 'string' ? ` (${detail})` : ''} [${finding.phase}]`
}
