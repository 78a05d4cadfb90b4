/**
 * The service as the client tests meet it: the real app on its own database, listening on a
 * loopback port, with mail going to a real SMTP server the test reads. The OpenAPI document is
 * the one that service serves.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { RawEnv } from '../../app.js'
import { build } from '../support/app.js'
import { startSmtp } from '../support/smtp.js'
import { until } from '../support/until.js'

/** Generated clients, the documents they came from and the tools' reports; git-ignored. */
export const WORK_DIR = join(import.meta.dirname, '..', '..', '.clients')

export async function startService (t: Test, env: RawEnv = {}) {
  const smtp = await startSmtp(t)
  const app = await build(t, { ...smtp.env, MAIL_RETRY_BASE_SECONDS: '1', ...env })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (typeof address !== 'object' || address === null) throw new Error('the service has no address')
  const url = `http://127.0.0.1:${address.port}`
  const response = await fetch(`${url}/openapi.json`)
  if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}`)
  const document = await response.text()

  /** The token of the newest mail to `email` whose subject starts with `subject` (its link ends in it). */
  async function mailToken (email: string, subject: string): Promise<string> {
    return await until(() => smtp.mails.findLast((m) => m.to.includes(email) && m.subject.startsWith(subject))
      ?.link?.match(/(?:token=|reset-password\/)([\w-]+)/)?.[1], 20_000, `a "${subject}" mail for ${email}`)
  }

  /** Writes the served document into a folder of WORK_DIR; returns the folder and the file. */
  function saveDocument (name: string) {
    const dir = join(WORK_DIR, name)
    mkdirSync(dir, { recursive: true })
    const file = join(dir, 'openapi.json')
    writeFileSync(file, document)
    return { dir, file }
  }

  return { app, url, document: JSON.parse(document), mailToken, saveDocument }
}
