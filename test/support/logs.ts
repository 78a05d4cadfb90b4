import { Writable } from 'node:stream'

/** Log lines of one app, parsed, so tests can assert what was (and was not) logged. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = []
  readonly raw: string[] = []
  override _write (chunk: Buffer, _encoding: string, callback: () => void) {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue
      this.raw.push(line)
      try { this.lines.push(JSON.parse(line)) } catch { this.lines.push({ msg: line }) }
    }
    callback()
  }

  text () {
    return this.raw.join('\n')
  }
}
