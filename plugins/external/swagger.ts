import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

/** The security scheme protected routes name: the login form, so Swagger UI's Authorize button works. */
export const bearerSecurity = [{ OAuth2PasswordBearer: [] }]

export default fp(async function swaggerPlugin (fastify) {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Chat Auth API',
        version: '1.0.0',
        description: 'Authentication and chat streaming. Errors are RFC 9457 problem details (application/problem+json).'
      },
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
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`)
    }
  })
  // The documentation answers while the database is still being set up.
  fastify.addHook('onRoute', (route) => {
    if (route.url === '/docs' || route.url.startsWith('/docs/')) route.config = { ...route.config, withoutDatabase: true }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
  fastify.get('/openapi.json', { schema: { hide: true }, config: { withoutDatabase: true } }, async () => fastify.swagger())
}, { name: 'swagger' })
