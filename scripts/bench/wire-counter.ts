/**
 * Counts MongoDB wire-protocol requests in a client→server byte stream, by command: reads each
 * message's 16-byte header (messageLength, requestID, responseTo, opCode) and, for OP_MSG, the
 * first key of the section-0 document (`find`, `insert`, `update`, `hello`...) and, when it is a
 * string, its value (the collection). Only the first bytes of a message are kept; the rest is
 * skipped without copying.
 */

const OP_MSG = 2013
const OP_QUERY = 2004
const OP_NAMES: Record<number, string> = { 2012: 'OP_COMPRESSED' }
/** Enough for the header, flags, section kind, document length, a command name and a collection name. */
const HEAD_BYTES = 160

/** The first key of the document at `at` (after its int32 length), or null when it is cut off. */
function firstKey (head: Buffer, at: number): { key: string, type: number, end: number } | null {
  const end = head.indexOf(0, at + 5)
  return at + 5 <= head.length && end !== -1 ? { key: head.toString('latin1', at + 5, end), type: head[at + 4]!, end } : null
}

/** `command collection` (or `command`) of an OP_MSG; `OP_QUERY command` (the legacy handshake); else the opcode. */
export function describeMessage (head: Buffer): string {
  const opCode = head.readInt32LE(12)
  if (opCode === OP_QUERY) {
    // flags (4) at 16, the collection's full name (cstring), numberToSkip and numberToReturn (4 + 4), the query.
    const nameEnd = head.indexOf(0, 20)
    const first = nameEnd === -1 ? null : firstKey(head, nameEnd + 9)
    return first ? `OP_QUERY ${first.key}` : 'OP_QUERY'
  }
  if (opCode !== OP_MSG) return OP_NAMES[opCode] ?? `opCode ${opCode}`
  // flagBits (4) at 16, then sections; the body (kind 0) normally comes first.
  const first = head[20] === 0 ? firstKey(head, 21) : null
  if (!first) return 'OP_MSG'
  const { key: command, type, end: nameEnd } = first
  if (type !== 0x02 || nameEnd + 5 > head.length) return command
  const length = head.readInt32LE(nameEnd + 1)
  const start = nameEnd + 5
  if (length < 1 || start + length - 1 > head.length) return command
  return `${command} ${head.toString('utf8', start, start + length - 1)}`
}

export class WireCounter {
  readonly counts = new Map<string, number>()
  total = 0
  private head: Buffer[] = []
  private headLength = 0
  /** Length of the message being read (0: not known yet), bytes of it seen so far. */
  private length = 0
  private seen = 0
  private counted = false
  private broken = false

  feed (chunk: Buffer): void {
    let at = 0
    while (at < chunk.length && !this.broken) {
      const want = this.length === 0 ? 4 : Math.min(this.length, HEAD_BYTES)
      if (this.seen < want) {
        const n = Math.min(want - this.seen, chunk.length - at)
        this.head.push(chunk.subarray(at, at + n))
        this.headLength += n
        this.seen += n
        at += n
        if (this.length === 0 && this.seen === 4) {
          this.length = Buffer.concat(this.head).readInt32LE(0)
          // Not the wire protocol (or out of step): stop counting rather than count garbage.
          if (this.length < 16) this.broken = true
        }
      } else {
        const n = Math.min(this.length - this.seen, chunk.length - at)
        this.seen += n
        at += n
      }
      if (this.length && this.seen >= Math.min(this.length, HEAD_BYTES) && !this.counted) {
        this.counted = true
        const name = describeMessage(Buffer.concat(this.head, this.headLength))
        this.counts.set(name, (this.counts.get(name) ?? 0) + 1)
        this.total++
      }
      if (this.length && this.seen === this.length) {
        this.head = []
        this.headLength = 0
        this.length = 0
        this.seen = 0
        this.counted = false
      }
    }
  }
}
