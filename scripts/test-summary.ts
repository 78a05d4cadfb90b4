/**
 * Prints `N passed, N failed` for the last tap run, counting leaf assertions in the TAP that tap
 * saves for each test file in .tap/test-results (tap's own summary line is not one CI reads).
 * Usage: tsx scripts/test-summary.ts <tap exit status>
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Parser } from 'tap-parser'

const dir = '.tap/test-results'
let passed = 0
let failed = 0

function files (folder: string): string[] {
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name)
    return statSync(path).isDirectory() ? files(path) : name.endsWith('.tap') ? [path] : []
  })
}

/** Counts a parser's own points, skipping those that only summarise a finished subtest. */
function count (parser: Parser) {
  let summaries = 0
  parser.on('child', (child: Parser) => {
    count(child)
    child.on('complete', () => { summaries++ })
  })
  parser.on('assert', (result: { ok: boolean }) => {
    if (summaries > 0) {
      summaries--
      return
    }
    if (result.ok) passed++
    else failed++
  })
}

// Results of test files that no longer exist (renamed or removed since an earlier run) do not count.
const current = (file: string) => existsSync(file.slice(dir.length + 1, -'.tap'.length))

for (const file of existsSync(dir) ? files(dir).filter(current) : []) {
  const parser = new Parser()
  count(parser)
  parser.end(readFileSync(file, 'utf8'))
}

const status = Number(process.argv[2] ?? 0)
if (status !== 0 && failed === 0) {
  console.log(`tap exited with status ${status} without a failed assertion (a file crashed or timed out)`)
  failed = 1
}
console.log(`${passed} passed, ${failed} failed`)
