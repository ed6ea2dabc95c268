/**
 * Who may read the dashboard (plugins/dashboard/access.ts): bound anywhere but loopback it
 * needs a token of at least 32 bytes, checked on the page and on its WebSocket; on
 * loopback without a token it answers only requests addressed to a loopback name (DNS
 * rebinding), and a WebSocket from another origin is refused everywhere. It is read-only:
 * no method but GET. Bad options are named. Requests go to 127.0.0.1 only.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { WebSocket } from 'ws'
import { createHost } from '../../src/index.ts'
import { dashboard } from '../../plugins/dashboard/index.ts'
import { inspectAgents } from './helpers.ts'

const token = 'a dashboard token of 32 bytes or more'.replaceAll(' ', '-')

/** GET (or another method) with headers of our choosing (fetch would not let us set Host). */
async function get (url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number, body: string, headers: Record<string, unknown> }> {
  return await new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => { body += d }).on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** Open the page's WebSocket: 'hello' (its first message) or the HTTP status that refused it. */
async function socket (url: string, headers: Record<string, string> = {}): Promise<string | number> {
  return await new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    ws.once('message', (data: Buffer) => { resolve((JSON.parse(data.toString()) as { t: string }).t); ws.close() })
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode!); res.resume() })
    ws.once('error', reject)
  })
}

test('bound off loopback: the page and its WebSocket need the token', async () => {
  const plugin = dashboard({ host: '0.0.0.0', token })
  const host = await createHost({ agents: inspectAgents, workers: 0, plugins: [plugin] })
  try {
    const url = plugin.url!
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/dashboard\/$/)
    const ws = `${url.replace('http:', 'ws:')}ws`
    assert.equal((await get(url)).status, 401, 'no token')
    assert.equal((await get(`${url}?token=${token}x`)).status, 401, 'a wrong token')
    assert.equal((await get(`${url}?token=${token.slice(0, -1)}`)).status, 401, 'a prefix of the token')
    const ok = await get(`${url}?token=${token}`)
    assert.equal(ok.status, 200)
    assert.match(ok.body, /<title>Shoal dashboard<\/title>/)
    assert.match(String(ok.headers['content-security-policy']), /default-src 'none'/)
    assert.equal(ok.headers['referrer-policy'], 'no-referrer', 'the token in the URL never leaks as a referrer')
    assert.equal((await get(url, { Authorization: `Bearer ${token}` })).status, 200)
    // with the token, even a Host header that is not loopback is fine: the token is the check
    assert.equal((await get(`${url}?token=${token}`, { Host: 'dashboard.example:80' })).status, 200)

    assert.equal(await socket(ws), 401, 'WebSocket without the token')
    assert.equal(await socket(`${ws}?token=nope`), 401)
    assert.equal(await socket(`${ws}?token=${token}`, { Origin: 'http://evil.example' }), 403, 'another origin')
    assert.equal(await socket(`${ws}?token=${token}`), 'hello')

    assert.equal((await get(`${url}?token=${token}`, {}, 'POST')).status, 405, 'read-only')
    assert.deepEqual((host.stats() as unknown as { dashboard: { refused: object } }).dashboard.refused, { token: 5, host: 0, origin: 1, method: 1 })
  } finally {
    await host.close()
  }
})

test('on loopback without a token: loopback host names only, same-origin WebSockets only', async () => {
  const plugin = dashboard()
  const host = await createHost({ agents: inspectAgents, workers: 0, plugins: [plugin] })
  try {
    const url = plugin.url!
    const port = new URL(url).port
    assert.equal((await get(url)).status, 200)
    assert.equal((await get(url, { Host: `localhost:${port}` })).status, 200)
    assert.equal((await get(url, { Host: `rebound.example:${port}` })).status, 403, 'DNS rebinding: a foreign host name')
    const ws = `${url.replace('http:', 'ws:')}ws`
    assert.equal(await socket(ws, { Origin: `http://127.0.0.1:${port}` }), 'hello')
    assert.equal(await socket(ws, { Origin: 'http://evil.example' }), 403)
    assert.equal((await get(`http://127.0.0.1:${port}/`)).status, 302, 'the root leads to the page')
  } finally {
    await host.close()
  }
})

test('dashboard options: each bad one is named, the token never echoed', async () => {
  const bad: Array<[object, RegExp]> = [
    [{ port: -1 }, /dashboard\.port/],
    [{ port: 1.5 }, /dashboard\.port/],
    [{ host: '' }, /dashboard\.host/],
    [{ token: 'short' }, /dashboard\.token must be at least 32 bytes \(got "a string of 5 bytes"\)/],
    [{ token: `${token} with spaces` }, /dashboard\.token/],
    [{ intervalMs: 10 }, /dashboard\.intervalMs/],
    [{ history: 0 }, /dashboard\.history/],
    [{ prot: 80 }, /dashboard\.prot is not an option/]
  ]
  for (const [options, message] of bad) {
    assert.throws(() => dashboard(options as never), (err: Error & { code?: string }) => err.code === 'SHOAL_ERR_INVALID_OPTION' && message.test(err.message) && !err.message.includes(token), String(message))
  }
  await assert.rejects(createHost({ agents: inspectAgents, workers: 0, plugins: [dashboard({ host: '0.0.0.0' })] }),
    { code: 'SHOAL_ERR_INVALID_OPTION', message: /dashboard\.token is required: the dashboard would be served on 0\.0\.0\.0/ })
})
