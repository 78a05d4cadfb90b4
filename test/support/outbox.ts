/** The mail outbox as stored: its entries, and the log lines the worker writes about them. */
import type { Db } from 'mongodb'
import type { OutboxEntry } from '../../plugins/app/mail/outbox-repository.js'
import type { LogCapture } from './logs.js'
import { until } from './until.js'

export function outbox (db: Db) {
  return db.collection<OutboxEntry>('mail_outbox')
}

/** The outbox entry of the one mail to `to`, once it matches `test`. */
export async function entryWhen (db: Db, to: string, test: (entry: OutboxEntry) => boolean, ms: number, what: string) {
  return await until(async () => {
    const entry = await outbox(db).findOne({ to })
    return entry && test(entry) ? entry : null
  }, ms, what)
}

/** Fields that carry the body or link of a mail: gone once the entry is finished. */
export function bodyFields (entry: OutboxEntry) {
  return ['text', 'html', 'link'].filter((field) => field in entry)
}

/** The error-level log lines that name this outbox entry. */
export function errorLinesFor (logs: LogCapture, entry: OutboxEntry) {
  return logs.lines.filter((line) => line.level === 50 && JSON.stringify(line).includes(entry._id.toHexString()))
}

/** The entry's error lines once there is one: the worker logs just after it stores the outcome (bounded: 5 s). */
export async function errorLinesOnceLogged (logs: LogCapture, entry: OutboxEntry) {
  return await until(() => errorLinesFor(logs, entry).length > 0 && errorLinesFor(logs, entry), 5000, 'an error line naming the entry', 50)
}
