import t from 'tap'
import { build, db, post } from '../../support/app.js'
import { mailFor, SUBJECTS, tokenOf } from '../../support/mail.js'
import { startSmtp } from '../../support/smtp.js'
import { argon2Params, login, loginForm, PASSWORD, register, uniqueEmail, userDoc } from '../../support/users.js'

t.test('POST /auth/register', async (t) => {
  t.test('answers 200 (the status of the original) with exactly the User fields', async (t) => {
    const app = await build(t)
    const email = uniqueEmail('shape')
    const res = await register(app, email)
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.strictSame(Object.keys(body).sort(), ['created_at', 'email', 'id', 'is_verified'], 'no other field, no hash')
    t.match(body.id, /^[0-9a-f]{24}$/)
    t.equal(body.email, email)
    t.equal(body.is_verified, false)
    t.match(body.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    t.notOk(res.body.includes('argon2'), 'the hash never leaves')

    const stored = await userDoc(app, email)
    t.equal(stored?._id.toHexString(), body.id, 'the id is the stored _id')
    t.equal(stored?.created_at.toISOString(), body.created_at)
  })

  t.test('trims and lower-cases the email; another letter case is the same account', async (t) => {
    const app = await build(t)
    const email = uniqueEmail('case')
    const res = await register(app, `  ${email.toUpperCase()}\t`)
    t.equal(res.statusCode, 200)
    t.equal(res.json().email, email)
    t.ok(await userDoc(app, email), 'stored lower-cased')

    const again = await register(app, email.replace(/^c/, 'C'), 'another password 123')
    t.equal(again.statusCode, 400)
    t.match(again.headers['content-type'], /^application\/problem\+json/)
    t.equal(again.json().detail, 'User with this email already exists')
    t.equal(await db(app).collection('users').countDocuments({ email }), 1)

    t.ok(await login(app, ` ${email.toUpperCase()} `), 'login normalises the address too')
  })

  t.test('the password is any 8..128 code points of Unicode, never trimmed', async (t) => {
    const app = await build(t)

    const emoji8 = '🔒'.repeat(8) // 16 UTF-16 units, 8 code points
    const e1 = uniqueEmail('emoji')
    t.equal((await register(app, e1, emoji8)).statusCode, 200, '8 emoji are 8 characters')
    t.ok(await login(app, e1, emoji8))

    const emoji128 = '😀'.repeat(128)
    const e2 = uniqueEmail('emoji128')
    t.equal((await register(app, e2, emoji128)).statusCode, 200, '128 emoji are 128 characters')
    t.ok(await login(app, e2, emoji128))

    const fourEmoji = await register(app, uniqueEmail('emoji4'), '🔒'.repeat(4))
    t.equal(fourEmoji.statusCode, 422, '4 emoji are 8 UTF-16 units but 4 characters')

    const spaces = '        ' // eight spaces
    const e3 = uniqueEmail('spaces')
    t.equal((await register(app, e3, spaces)).statusCode, 200, 'spaces only is a valid password')
    t.ok(await login(app, e3, spaces))

    const padded = '  padded password  '
    const e4 = uniqueEmail('padded')
    t.equal((await register(app, e4, padded)).statusCode, 200)
    t.equal((await loginForm(app, e4, padded.trim())).statusCode, 401, 'the trimmed password is another password')
    t.equal((await loginForm(app, e4, `${padded} `)).statusCode, 401, 'one more space is another password')
    t.equal((await loginForm(app, e4, padded)).statusCode, 200, 'the exact password works')

    const accents = 'pässwörd ñ 密码 Ω'
    const e5 = uniqueEmail('accents')
    t.equal((await register(app, e5, accents)).statusCode, 200)
    t.not(accents.normalize('NFD'), accents, 'the decomposed form is another string')
    t.equal((await loginForm(app, e5, accents.normalize('NFD'))).statusCode, 401, 'not Unicode-normalised either')
    t.equal((await loginForm(app, e5, accents)).statusCode, 200)
  })

  t.test('a password too short or too long is a 422 listing the problem', async (t) => {
    const app = await build(t)

    const short = await register(app, uniqueEmail('short'), 'x'.repeat(7))
    t.equal(short.statusCode, 422)
    t.match(short.headers['content-type'], /^application\/problem\+json/)
    t.match(short.json(), { status: 422, title: 'Unprocessable Entity', detail: [{ loc: ['body', 'password'] }] })

    const long = await register(app, uniqueEmail('long'), 'x'.repeat(129))
    t.equal(long.statusCode, 422)
    const body = long.json()
    t.equal(body.detail.length, 1)
    t.strictSame(Object.keys(body.detail[0]).sort(), ['loc', 'msg', 'type'])
    t.strictSame(body.detail[0].loc, ['body', 'password'])
    t.equal(body.detail[0].msg, 'String should have at most 128 characters', 'detail[0].msg, as the original\'s web client reads it')
    t.type(body.detail[0].type, 'string')
    t.type(body.request_id, 'string')

    t.equal((await register(app, uniqueEmail('max'), 'x'.repeat(128))).statusCode, 200, '128 is allowed')
    t.equal((await register(app, uniqueEmail('min'), 'x'.repeat(8))).statusCode, 200, '8 is allowed')
  })

  t.test('invalid input is a 422 and stores nothing', async (t) => {
    const app = await build(t)
    const users = db(app).collection('users')

    const cases: Array<[string, unknown, string]> = [
      ['not an address', { email: 'not-an-email', password: PASSWORD }, 'email'],
      ['no email', { password: PASSWORD }, 'email'],
      ['no password', { email: uniqueEmail() }, 'password'],
      ['a number as password (no coercion)', { email: uniqueEmail(), password: 1234567890 }, 'password'],
      ['an operator object as email', { email: { $gt: '' }, password: PASSWORD }, 'email'],
      ['an operator object as password', { email: uniqueEmail(), password: { $ne: null } }, 'password'],
      ['an array as email', { email: [uniqueEmail()], password: PASSWORD }, 'email']
    ]
    for (const [name, payload, field] of cases) {
      const res = await post(app, '/auth/register', payload)
      t.equal(res.statusCode, 422, name)
      t.ok(res.json().detail.some((e: { loc: string[] }) => e.loc.join('.') === `body.${field}`), `${name}: names body.${field}`)
    }
    t.equal(await users.countDocuments({}), 0, 'nothing stored')
  })

  t.test('an address is at most 254 characters', async (t) => {
    const app = await build(t)
    const local = 'a'.repeat(64)
    const domain = (length: number) => `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(length - 63 - 63 - 2 - 3)}.io`
    const at254 = `${local}@${domain(254 - 65)}`
    const at255 = `${local}@${domain(255 - 65)}`
    t.equal(at254.length, 254)
    t.equal((await register(app, at254)).statusCode, 200)
    t.equal((await register(app, at255)).statusCode, 422)
  })

  t.test('stores an argon2id hash with the configured parameters and a fresh salt', async (t) => {
    const app = await build(t)
    const [a, b] = [uniqueEmail('hash-a'), uniqueEmail('hash-b')]
    await register(app, a)
    await register(app, b)
    const [docA, docB] = [await userDoc(app, a), await userDoc(app, b)]
    t.strictSame(argon2Params(docA!.password_hash), { id: 'argon2id', v: 19, m: 19456, t: 2, p: 1 }, docA!.password_hash)
    t.strictSame(argon2Params(docB!.password_hash), { id: 'argon2id', v: 19, m: 19456, t: 2, p: 1 })
    t.match(docA!.password_hash, /^\$argon2id\$v=19\$m=19456,/, 'an argon2id PHC string')
    t.not(docA?.password_hash, docB?.password_hash, 'same password, different hashes')
    t.notOk(docA?.password_hash.includes(PASSWORD))
    t.equal(docA?.is_verified, false)
  })

  t.test('sends a verification mail with a link to the frontend', async (t) => {
    const smtp = await startSmtp(t)
    const app = await build(t, smtp.env)
    const email = uniqueEmail('mail')
    t.equal((await register(app, email.toUpperCase())).statusCode, 200)
    const mail = await mailFor(smtp, email, SUBJECTS.verify)
    t.match(mail.link, /^http:\/\/localhost:3000\/verify-email\?token=[A-Za-z0-9_-]{43,}$/)
    const token = tokenOf(mail)
    t.ok(Buffer.from(token, 'base64url').length >= 32, 'at least 256 bits')
    t.ok(mail.html.includes(mail.link!), 'the HTML part carries the same link')
    t.notOk(mail.text.includes(PASSWORD))

    const stored = await db(app).collection('one_time_tokens').find({ purpose: 'verify-email' }).toArray()
    t.equal(stored.length, 1)
    t.notOk(JSON.stringify(stored).includes(token), 'the token is stored only as a hash')
  })

  t.test('FRONTEND_URL sets the base of the link', async (t) => {
    const smtp = await startSmtp(t)
    const app = await build(t, { ...smtp.env, FRONTEND_URL: 'https://chat.example.org/' })
    const email = uniqueEmail('frontend')
    await register(app, email)
    const mail = await mailFor(smtp, email, SUBJECTS.verify)
    t.match(mail.link, /^https:\/\/chat\.example\.org\/verify-email\?token=[A-Za-z0-9_-]+$/)
    const verified = await app.inject({ url: `/auth/verify/${tokenOf(mail)}` })
    t.equal(verified.statusCode, 200, 'the link token verifies')
  })

  t.test('20 parallel sign-ups of one address in mixed case make one account', async (t) => {
    const app = await build(t)
    const email = uniqueEmail('race')
    const variants = Array.from({ length: 20 }, (_, i) =>
      [...email].map((c, j) => ((i >> (j % 5)) & 1) ? c.toUpperCase() : c).join(''))
    const answers = await Promise.all(variants.map((v, i) => register(app, v, `password number ${i}`)))
    const statuses = answers.map((r) => r.statusCode)
    t.equal(statuses.filter((s) => s === 200).length, 1, 'exactly one created')
    t.equal(statuses.filter((s) => s === 400).length, 19, `the rest refused: ${statuses.join(',')}`)
    for (const r of answers.filter((a) => a.statusCode === 400)) t.equal(r.json().detail, 'User with this email already exists')
    t.equal(await db(app).collection('users').countDocuments({ email }), 1)

    const winner = answers.findIndex((r) => r.statusCode === 200)
    t.ok(await login(app, email, `password number ${winner}`), 'the created account has the winner\'s password')
  })
})
