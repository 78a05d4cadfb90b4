import t from 'tap'
import { build, post, type TestApp } from '../../support/app.js'
import { allMailsAfterClose, appWithMail, mailFor, SUBJECTS } from '../../support/mail.js'
import { bearer, login, loginForm, me, PASSWORD, signUp } from '../../support/users.js'

const NEW_PASSWORD = 'a whole new password 🔑'

function changePassword (app: TestApp, token: string | undefined, body: Record<string, unknown>) {
  return post(app, '/auth/change-password', body, token ? bearer(token) : {})
}

t.test('POST /auth/change-password', async (t) => {
  t.test('changes the password, ends the other sessions and mails the user', async (t) => {
    const { app, smtp } = await appWithMail(t)
    const { email, token: other } = await signUp(app)
    const current = await login(app, email)

    const res = await changePassword(app, current, { current_password: PASSWORD, new_password: NEW_PASSWORD })
    t.equal(res.statusCode, 200)
    t.strictSame(res.json(), { detail: 'Password updated successfully' })

    t.equal((await loginForm(app, email, PASSWORD)).statusCode, 401, 'the old password no longer works')
    t.equal((await loginForm(app, email, NEW_PASSWORD)).statusCode, 200, 'the new one does')

    const otherMe = await me(app, other)
    t.equal(otherMe.statusCode, 401, 'a session opened before the change is signed out')
    t.equal(otherMe.json().detail, 'Could not validate credentials')
    t.equal(otherMe.headers['www-authenticate'], 'Bearer error="invalid_token"')
    t.equal((await me(app, current)).statusCode, 200, 'the session that made the change stays')

    const mail = await mailFor(smtp, email, SUBJECTS.changed)
    t.notOk(mail.text.includes(NEW_PASSWORD), 'the mail does not repeat the password')
  })

  t.test('refuses a wrong current password, an unchanged one and a weak one', async (t) => {
    const { app, smtp } = await appWithMail(t)
    const { email, token } = await signUp(app)

    const wrong = await changePassword(app, token, { current_password: 'not my password', new_password: NEW_PASSWORD })
    t.equal(wrong.statusCode, 401)
    t.equal(wrong.json().detail, 'Current password is incorrect')
    t.match(wrong.headers['content-type'], /^application\/problem\+json/)

    const same = await changePassword(app, token, { current_password: PASSWORD, new_password: PASSWORD })
    t.equal(same.statusCode, 400)
    t.equal(same.json().detail, 'New password must be different from current password')

    const weak = await changePassword(app, token, { current_password: PASSWORD, new_password: 'short' })
    t.equal(weak.statusCode, 422)
    t.strictSame(weak.json().detail.map((e: { loc: string[] }) => e.loc), [['body', 'new_password']])

    t.equal((await changePassword(app, token, { new_password: NEW_PASSWORD })).statusCode, 422, 'missing current password')
    t.equal((await me(app, token)).statusCode, 200, 'the session is untouched')
    t.equal((await loginForm(app, email, PASSWORD)).statusCode, 200, 'the password is unchanged')

    const mails = await allMailsAfterClose(app, smtp, email)
    t.strictSame(mails.map((m) => m.subject), [SUBJECTS.verify], 'no "password changed" mail')
  })

  t.test('needs a valid bearer token', async (t) => {
    const app = await build(t)
    const body = { current_password: PASSWORD, new_password: NEW_PASSWORD }

    const none = await changePassword(app, undefined, body)
    t.equal(none.statusCode, 401)
    t.equal(none.json().detail, 'Not authenticated')
    t.equal(none.headers['www-authenticate'], 'Bearer')

    const bad = await changePassword(app, 'not.a.token', body)
    t.equal(bad.statusCode, 401)
    t.equal(bad.json().detail, 'Could not validate credentials')
  })
})
