import t from 'tap'
import { ObjectId } from 'mongodb'
import { build, db } from '../support/app.js'
import { claimsOf } from '../support/tokens.js'
import { bearer, login, signUp } from '../support/users.js'

t.test('expired and revoked sessions are pruned; live ones stay', async (t) => {
  const app = await build(t)
  const alice = await signUp(app)
  const sessions = db(app).collection('sessions')
  const second = bearer(await login(app, alice.email))
  const third = await login(app, alice.email)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: second })).statusCode, 204)
  const thirdId = new ObjectId(claimsOf(third).sid)
  await sessions.updateOne({ _id: thirdId }, { $set: { expires_at: new Date(Date.now() - 1000) } })
  t.equal(await sessions.countDocuments({}), 3)

  t.equal(await app.sessionsRepository.prune(), 2, 'the revoked and the expired session')
  t.equal(await sessions.countDocuments({}), 1, 'one left')
  t.equal((await app.inject({ url: '/users/me', headers: alice.headers })).statusCode, 200, 'and it still works')
  t.equal((await app.inject({ url: '/users/me', headers: second })).statusCode, 401, 'the pruned ones do not')
})
