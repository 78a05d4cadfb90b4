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

/**
 * Addresses are trimmed and lower-cased before validation, so `A@x.io ` and `a@x.io` are one account.
 * The original's clients call resend, forgot and reset with query parameters and no body: an absent
 * body is an empty one, so that the fields can come from the query.
 */
export default async function authHooks (fastify: FastifyInstance) {
  fastify.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.routeOptions.schema?.querystring !== undefined) request.body = {}
    normaliseEmails(request.body)
    normaliseEmails(request.query)
  })
}
