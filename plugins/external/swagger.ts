import swagger, { type SwaggerTransform } from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import type { TSchema } from 'typebox'
import { streamEventSchemas } from '../../schemas/chat.js'

/** The security scheme protected routes name: the login form, so Swagger UI's Authorize button works. */
export const bearerSecurity = [{ OAuth2PasswordBearer: [] }]

/** Said explicitly on public routes, so that no generator guesses. */
export const noSecurity = []

/** Schemas that only the document uses: the stream's events, which the stream writes itself. */
const documentOnlySchemas: TSchema[] = streamEventSchemas

/**
 * A route's body as the document offers it, in one media type, while the route accepts more
 * (`consumes`): the login route documents the OAuth2 form and still takes JSON.
 */
export function documentBodyAs (mediaType: string, schema: TSchema): SwaggerTransform {
  return ({ schema: routeSchema, url }) => ({ schema: { ...routeSchema, consumes: [mediaType], body: schema }, url })
}

interface Operation {
  parameters?: Array<{ in: string, required?: boolean, schema?: { default?: unknown } }>
  requestBody?: { required?: boolean }
}

/** What @fastify/swagger cannot be told route by route, said once for every operation. */
function completeOperation (operation: Operation) {
  // A query parameter with a default is filled in by validation: clients need not send it.
  for (const parameter of operation.parameters ?? []) {
    if (parameter.in !== 'path' && parameter.schema?.default !== undefined) parameter.required = false
  }
  // A route that takes its input from the query too treats a missing body as an empty one
  // (routes/auth/autohooks.ts), so the body is optional; @fastify/swagger marks every body required.
  if (operation.requestBody && operation.parameters?.some((parameter) => parameter.in === 'query')) {
    operation.requestBody.required = false
  }
}

function serverUrl (host: string, port: number) {
  const name = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host
  return `http://${name}:${port}`
}

export default fp(async function swaggerPlugin (fastify) {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Chat Auth API',
        version: '1.0.0',
        description: 'Authentication and chat streaming. Errors are RFC 9457 problem details (application/problem+json); ' +
          'a validation failure is a 422 whose `detail` is FastAPI\'s list `[{ loc, msg, type }]` (`ValidationProblem`). ' +
          'A known path asked with another method answers 405 with `Allow`.'
      },
      // Relative first: Swagger UI and schemathesis then call whatever address served the document,
      // a proxy's too; generators that want an absolute default find this process's own.
      servers: [
        { url: '/', description: 'The server this document comes from' },
        { url: serverUrl(fastify.config.HOST, fastify.config.PORT), description: 'This process, at its HOST and PORT' }
      ],
      tags: [
        { name: 'Auth', description: 'Registration, login, verification and password flows' },
        { name: 'Users', description: 'The signed-in user' },
        { name: 'Chat', description: 'Chats, messages and streamed replies' },
        { name: 'Health', description: 'Liveness and readiness' }
      ],
      components: {
        securitySchemes: {
          OAuth2PasswordBearer: {
            type: 'oauth2',
            flows: { password: { tokenUrl: '/auth/login', scopes: {} } }
          }
        }
      }
    },
    // OpenAPI 3.1 has `const`, which generators turn into literal types; one-value enums become enum classes.
    convertConstToEnum: false,
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`)
    },
    transformObject: (document) => {
      if (!('openapiObject' in document)) return document.swaggerObject
      const paths = (document.openapiObject.paths ?? {}) as Record<string, Record<string, Operation>>
      for (const item of Object.values(paths)) {
        for (const operation of Object.values(item)) completeOperation(operation)
      }
      return document.openapiObject
    }
  })
  // The documentation answers while the database is still being set up.
  fastify.addHook('onRoute', (route) => {
    if (route.url === '/docs' || route.url.startsWith('/docs/')) route.config = { ...route.config, withoutDatabase: true }
  })
  for (const schema of documentOnlySchemas) fastify.addSchema(schema)
  await fastify.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
  fastify.get('/openapi.json', { schema: { hide: true }, config: { withoutDatabase: true } }, async () => fastify.swagger())
}, { name: 'swagger', dependencies: ['env'] })
