import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import fp from 'fastify-plugin'
import type { FastifyError } from 'fastify'
import type { FastifySchemaValidationError } from 'fastify/types/schema.js'
import type { ValidationIssue } from '../../../schemas/common.js'

/**
 * Bodies are validated strictly (a number is not a string, as in pydantic); query, path and header
 * values arrive as text and are coerced. Both report every problem so a 422 can list them all;
 * body size and array limits bound that work (see `itemsWithinLimit`).
 */
function createValidators () {
  const common = { useDefaults: true, removeAdditional: true, allErrors: true, strict: false } as const
  const body = addFormats.default(new Ajv({ ...common, coerceTypes: false }))
  const text = addFormats.default(new Ajv({ ...common, coerceTypes: 'array' }))
  for (const ajv of [body, text]) ajv.addFormat('password', true)
  return { body, text }
}

const validationParts: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' }

/** Request validation, and its errors as the issues a 422 lists (see `toValidationIssues`). */
export default fp(async function validation (fastify) {
  const validators = createValidators()
  fastify.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? validators.body : validators.text).compile(itemsWithinLimit(schema) as object))
  fastify.setSchemaErrorFormatter((errors, dataVar) => {
    const error = new Error(`${dataVar} is invalid`) as FastifyError & { issues: ValidationIssue[] }
    error.issues = toValidationIssues(errors, validationParts[dataVar] ?? dataVar)
    return error
  })
}, { name: 'validation' })

/**
 * The schema with each array's items checked only when the array is within its `maxItems`. With
 * `allErrors` Ajv goes on past `maxItems` and reports every bad item: 100,000 empty messages took a
 * second and answered 15 MiB. An over-long array now gets the one `maxItems` problem.
 */
export function itemsWithinLimit (schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(itemsWithinLimit)
  if (typeof schema !== 'object' || schema === null) return schema
  const copy: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(schema)) copy[key] = itemsWithinLimit(value)
  if (typeof copy.maxItems === 'number' && copy.items !== undefined) {
    const { items, ...rest } = copy
    return { ...rest, if: { maxItems: copy.maxItems }, then: { items } }
  }
  return copy
}

/**
 * Ajv errors in the shape FastAPI clients already parse: `loc` is the path from the request part,
 * `msg` and `type` follow pydantic's wording.
 */
export function toValidationIssues (errors: FastifySchemaValidationError[], part: string): ValidationIssue[] {
  const issues: ValidationIssue[] = []
  const seen = new Set<string>()
  for (const error of errors) {
    const issue = toIssue(error, part)
    const key = issue.loc.join('.')
    // The branch errors already say it (`if` is only `itemsWithinLimit`'s).
    if (error.keyword === 'anyOf' || error.keyword === 'if' || seen.has(key)) continue
    seen.add(key)
    issues.push(issue)
  }
  if (issues.length === 0 && errors[0]) issues.push(toIssue(errors[0], part))
  return issues
}

function toIssue (error: FastifySchemaValidationError, part: string): ValidationIssue {
  const path = (error.instancePath ?? '').split('/').filter(Boolean).map(unescapePointer)
  const params = error.params as Record<string, unknown>
  if (error.keyword === 'required') {
    return { loc: [part, ...path, String(params.missingProperty)], msg: 'Field required', type: 'missing' }
  }
  const loc = [part, ...path]
  switch (error.keyword) {
    case 'type': {
      const wanted = String(params.type)
      if (wanted === 'object' && path.length === 0) return { loc, msg: 'Input should be a valid dictionary', type: 'dict_type' }
      return { loc, msg: `Input should be a valid ${typeNames[wanted] ?? wanted}`, type: `${wanted}_type` }
    }
    case 'minLength':
      return { loc, msg: `String should have at least ${String(params.limit)} character${params.limit === 1 ? '' : 's'}`, type: 'string_too_short' }
    case 'maxLength':
      return { loc, msg: `String should have at most ${String(params.limit)} characters`, type: 'string_too_long' }
    case 'minItems':
      return { loc, msg: `List should have at least ${String(params.limit)} items`, type: 'too_short' }
    case 'maxItems':
      return { loc, msg: `List should have at most ${String(params.limit)} items`, type: 'too_long' }
    case 'minimum':
      return { loc, msg: `Input should be greater than or equal to ${String(params.limit)}`, type: 'greater_than_equal' }
    case 'maximum':
      return { loc, msg: `Input should be less than or equal to ${String(params.limit)}`, type: 'less_than_equal' }
    case 'format':
      if (params.format === 'email') return { loc, msg: 'value is not a valid email address', type: 'value_error' }
      return { loc, msg: `Input should be a valid ${String(params.format)}`, type: 'value_error' }
    case 'pattern':
      return { loc, msg: `String should match pattern '${String(params.pattern)}'`, type: 'string_pattern_mismatch' }
    case 'const':
    case 'enum':
      return { loc, msg: `Input should be ${describeAllowed(params)}`, type: 'literal_error' }
    default:
      return { loc, msg: error.message ?? 'Invalid value', type: 'value_error' }
  }
}

const typeNames: Record<string, string> = {
  string: 'string', integer: 'integer', number: 'number', boolean: 'boolean', array: 'list', object: 'dictionary', null: 'null'
}

function describeAllowed (params: Record<string, unknown>) {
  const values = 'allowedValue' in params ? [params.allowedValue] : (params.allowedValues as unknown[] ?? [])
  return values.map((v) => `'${String(v)}'`).join(' or ')
}

function unescapePointer (segment: string): string | number {
  const s = segment.replace(/~1/g, '/').replace(/~0/g, '~')
  return /^\d+$/.test(s) ? Number(s) : s
}
