/**
 * The dashboard of one host, as a person sees it: a host with two workers under load,
 * the page opened in headless Chromium (test/helpers/browser.ts), and checked that it
 * is live (its numbers change between two reads, over its WebSocket, without a reload),
 * that the six charts drew pixels, that it fetches nothing but its own page and socket,
 * and that agent errors, worker restarts, quotas and an agent lookup show up. A
 * screenshot of each view is written to the test's temp directory (kept; its path is
 * printed as a diagnostic).
 */
import { strict as assert } from 'node:assert'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Page } from 'playwright-core'
import { createHost } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import { dashboard } from '../../plugins/dashboard/index.ts'
import type { DashboardPlugin } from '../../plugins/dashboard/index.ts'
import { launchBrowser } from '../helpers/browser.ts'
import type { LaunchedBrowser } from '../helpers/browser.ts'
import { inspectAgents, paintedCharts, runLoad, screenshot, waitInPage } from './helpers.ts'

describe('dashboard of one host, in a browser', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-dashboard-test-'))
  let host: Host
  let plugin: DashboardPlugin
  let browser: LaunchedBrowser | null = null
  let page: Page
  let load: { stop: () => Promise<void> } | null = null
  const pageErrors: string[] = []
  const requests: string[] = []

  before(async () => {
    plugin = dashboard({ intervalMs: 250 })
    host = await createHost({ agents: inspectAgents, workers: 2, plugins: [plugin] })
    await host.quotas.set('tenant-a', 10)
    await host.ref('counter', 'q1', { quota: 'tenant-a' }).call('add', 1)
    await host.ref('ledger', 'L7').call('put', { key: 'item/1', value: 'one' })
    load = runLoad(host)
    browser = await launchBrowser()
    page = await browser.context.newPage()
    await page.setViewportSize({ width: 1400, height: 1300 })
    page.on('pageerror', (err) => pageErrors.push(err.message))
    page.on('request', (req) => requests.push(req.url()))
    await page.goto(plugin.url!)
    await waitInPage(page, 'window.shoalDashboard && window.shoalDashboard.connected && window.shoalDashboard.samples.length >= 4', 15_000)
  })

  after(async () => {
    await load?.stop()
    await browser?.close()
    await host?.close()
  })

  it('is served by the host on 127.0.0.1 and fetches nothing else', async (t) => {
    t.diagnostic(`screenshots in ${dir}/screenshots`)
    assert.match(plugin.url!, /^http:\/\/127\.0\.0\.1:\d+\/dashboard\/$/)
    assert.deepEqual(pageErrors, [])
    assert.deepEqual(requests.filter((u) => !u.startsWith(plugin.url!)), [], 'no request but the page itself')
    assert.equal(await page.textContent('#status'), 'live')
  })

  it('is live: the numbers change between two reads, with no reload', async () => {
    const read = async (): Promise<{ at: number, table: string, n: number }> => ({
      at: await page.evaluate<number>('window.shoalDashboard.last.at'),
      table: (await page.textContent('#workers')) ?? '',
      n: await page.evaluate<number>('window.shoalDashboard.messages')
    })
    const first = await read()
    await new Promise((resolve) => setTimeout(resolve, 700))
    const second = await read()
    assert.ok(second.at > first.at, 'a newer sample arrived')
    assert.ok(second.n > first.n, 'over the same WebSocket')
    assert.notEqual(second.table, first.table, 'the workers table shows new figures')
    const last = await page.evaluate<{ activeAgents: number, messagesPerSec: number, calls: { perSec: number, p50Us: number }, workers: Array<{ gcMaxMs: number }>, mainGc: { maxMs: number } }>('window.shoalDashboard.last')
    assert.ok(last.activeAgents >= 20_000, `resident agents: ${last.activeAgents}`)
    assert.ok(last.messagesPerSec > 0)
    assert.ok(last.calls.perSec > 0 && last.calls.p50Us > 0, 'call round trips are measured')
    assert.ok(last.mainGc.maxMs > 0 || last.workers.some((w) => w.gcMaxMs > 0), 'GC pauses are observed')
  })

  it('draws its six charts: canvases with pixels on them', async () => {
    assert.equal(await page.evaluate('window.shoalDashboard.charts'), 6)
    const charts = await paintedCharts(page)
    assert.deepEqual(charts.map((c) => c.id), ['chart-messages', 'chart-agents', 'chart-latency', 'chart-commits', 'chart-gc', 'chart-rings'])
    for (const c of charts) {
      assert.ok(c.width > 100, `${c.id}: canvas has a size`)
      assert.ok(c.painted > 1000, `${c.id}: ${c.painted} painted pixels`)
    }
  })

  it('lists the quotas with their limits and counts', async () => {
    const rows = await page.evaluate<string[][]>(`[...document.querySelectorAll('#quotas tr')].map((tr) => [...tr.children].map((td) => td.textContent))`)
    assert.deepEqual(rows.find((r) => r[0] === 'tenant-a'), ['tenant-a', '10', '1', '10 %'])
    assert.equal(rows.find((r) => r[0] === 'default')?.[1], 'none')
  })

  it('lists agent errors and worker restarts as they happen', async () => {
    await assert.rejects(host.ref('fragile', 'f1').call('fail'), { code: 'SHOAL_ERR_AGENT' })
    await assert.rejects(host.ref('fragile', 'f2').call('exit'), { code: 'SHOAL_ERR_WORKER_CRASHED' })
    await waitInPage(page, `[...document.querySelectorAll('#events li')].some((li) => li.textContent.includes('refused on purpose'))`, 10_000)
    await waitInPage(page, `[...document.querySelectorAll('#events li')].some((li) => /worker \\d restarted \\(exit code 7/.test(li.textContent))`, 10_000)
    await screenshot(page, dir, 'host')
  })

  it('looks up an agent: host, worker, shard, state, storage keys and reminders', async () => {
    await page.click('#tab-agent')
    await page.selectOption('#lookup-type', 'ledger')
    await page.fill('#lookup-key', 'L7')
    await page.click('#lookup-form button[type=submit]')
    await waitInPage(page, 'window.shoalDashboard.lookup !== null', 10_000)
    const m = await page.evaluate<{ ok: boolean, result: { host: string, thread: number, shard: number, active: boolean, stateText: string, storageKeys: string[], reminders: Array<{ name: string }> } }>('window.shoalDashboard.lookup')
    assert.equal(m.ok, true)
    const seen = await host.inspect('ledger', 'L7')
    assert.equal(m.result.thread, seen.thread)
    assert.equal(m.result.shard, seen.shard)
    assert.equal(m.result.active, true)
    assert.deepEqual(JSON.parse(m.result.stateText), { entries: 1, owner: '' })
    assert.deepEqual(m.result.storageKeys, ['item/1'])
    assert.deepEqual(m.result.reminders.map((r) => r.name), ['audit'])
    const text = await page.textContent('#lookup-result') ?? ''
    for (const s of [`worker ${seen.thread}`, `${seen.shard}`, 'item/1', 'audit', '"entries": 1']) assert.ok(text.includes(s), `${s} in ${text}`)
    await screenshot(page, dir, 'agent')
  })
})
