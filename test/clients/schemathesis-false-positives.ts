/**
 * The schemathesis findings that are not defects, each narrowed to the check, operations, status
 * and problem text it is about, with the reason. Anything else schemathesis reports fails the test.
 */

export interface Finding {
  check: string
  code: string
  title: string
  operation: string
  phase: string
  status: number | undefined
  body: unknown
  message: string
}

interface FalsePositive {
  check: string
  /** `METHOD /path` as schemathesis names operations; `*` for any. */
  operations: string[] | '*'
  /** The response's status; `2xx` for any success. */
  status: number | '2xx'
  /** The problem's detail (or, for a 422, its issues' messages) must match. */
  detail?: RegExp
  /** schemathesis's message (what the request violated) must match. */
  message?: RegExp
  why: string
}

export const falsePositives: FalsePositive[] = [
  {
    check: 'positive_data_acceptance',
    operations: ['GET /auth/verify/{token}', 'POST /auth/verify', 'POST /auth/reset-password', 'POST /auth/reset-password/{token}'],
    status: 400,
    detail: /^Invalid or expired (verification|reset) token$/,
    why: 'A well-formed token that was never issued. The contract answers 400 (the original\'s status, which its clients show), ' +
      'a status schemathesis does not expect for schema-valid data.'
  },
  {
    check: 'positive_data_acceptance',
    operations: ['POST /auth/register'],
    status: 400,
    detail: /^User with this email already exists$/,
    why: 'schemathesis registers the same example address twice; the contract answers a taken address with 400.'
  },
  {
    check: 'positive_data_acceptance',
    operations: ['POST /auth/resend-verification', 'POST /auth/forgot-password', 'POST /auth/reset-password/{token}'],
    status: 422,
    detail: /Field required/,
    why: 'The value comes in the query (the original\'s form) or in the JSON body. OpenAPI cannot say "one of the two", ' +
      'so both are optional in the document and a request with neither is schema-valid; the service answers it 422.'
  },
  {
    check: 'negative_data_rejection',
    operations: '*',
    status: '2xx',
    message: /(violates `additionalProperties`|object with unexpected properties)$/,
    why: 'An unknown body field, and nothing else wrong. The contract ignores unknown fields, as the original (pydantic) did, ' +
      'since its clients may send some: Ajv drops them before the handler (docs/SECURITY-REVIEW.md item 40). The document ' +
      'still says `additionalProperties: false`, so that generated clients send only the known fields.'
  },
  {
    check: 'negative_data_rejection',
    operations: '*',
    status: 413,
    why: 'The body is over the route\'s size limit: it is refused with 413 before it is read, so its invalid content never matters. ' +
      'schemathesis counts only 400, 401, 403, 404, 405, 406, 409, 415, 422, 428 and 429 as rejections.'
  }
]

/** The problem's text: `detail` when it is a string, else the messages of a 422's list. */
function problemText (body: unknown): string {
  const problem = body as { detail?: unknown } | undefined
  if (typeof problem?.detail === 'string') return problem.detail
  const issues = Array.isArray(problem?.detail) ? problem.detail : []
  return issues.map((issue: { loc?: unknown[], msg?: string }) => `${issue.loc?.join('.')}: ${issue.msg}`).join('; ')
}

export function explainedBy (finding: Finding): FalsePositive | undefined {
  return falsePositives.find((known) => known.check === finding.check &&
    (known.operations === '*' || known.operations.includes(finding.operation)) &&
    (known.status === '2xx' ? String(finding.status).startsWith('2') : known.status === finding.status) &&
    (known.detail === undefined || known.detail.test(problemText(finding.body))) &&
    (known.message === undefined || known.message.test(finding.message)))
}
