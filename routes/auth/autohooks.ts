import type { FastifyInstance } from 'fastify'

const emailFields = ['email', 'username'] as const

function normaliseEmails (input: unknown) {
  if (typeof input !== 'object' || input === null) return
  const record = input as Record<string, unknown>
  for (const field of emailFields) {
    const value = record[field]
    if (typeof value === 'string') record[field] = value.trim().toLowerCase()
  }
}

/** Addresses are trimmed and lower-cased before validation, so `A@x.io ` and `a@x.io` are one account. */
export default async function authHooks (fastify: FastifyInstance) {
  fastify.addHook('preValidation', async (request) => {
    normaliseEmails(request.body)
    normaliseEmails(request.query)
  })
}
