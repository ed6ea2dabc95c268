/**
 * The dashboard of a cluster of three hosts (static membership, in this process, real
 * links on 127.0.0.1), opened on one of them in headless Chromium: it is served from the
 * cluster's own port, shows the three members with the other hosts' own figures (asked
 * over the links), the shard map with every shard owned, the links, and looks up an
 * agent that lives on another host. A screenshot of each view goes to the test's temp
 * directory (kept; its path is printed as a diagnostic).
 */
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Page } from 'playwright-core'
import { createHost } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import { cluster } from '../../plugins/cluster/index.ts'
import { dashboard } from '../../plugins/dashboard/index.ts'
import type { DashboardPlugin } from '../../plugins/dashboard/index.ts'
import { launchBrowser } from '../helpers/browser.ts'
import type { LaunchedBrowser } from '../helpers/browser.ts'
import { inspectAgents, runLoad, screenshot, waitInPage } from './helpers.ts'

const secret = 'a test secret of at least thirty-two bytes!!'

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

describe('dashboard of a three-host cluster, in a browser', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-dashboard-test-'))
  const dataDirs: string[] = []
  let hosts: Host[] = []
  let plugins: DashboardPlugin[] = []
  let browser: LaunchedBrowser | null = null
  let page: Page
  let load: { stop: () => Promise<void> } | null = null
  const pageErrors: string[] = []

  before(async () => {
    const ports = await Promise.all([0, 1, 2].map(freePort))
    const list = ports.map((p, i) => `h${i}@127.0.0.1:${p}`)
    plugins = ports.map(() => dashboard({ intervalMs: 250 }))
    hosts = await Promise.all(ports.map((port, i) => {
      const data = mkdtempSync(join(tmpdir(), 'shoal-dashboard-data-'))
      dataDirs.push(data)
      // the dashboard listed first: it finds the cluster's server in start(), whatever the order
      const ordered = i === 1 ? [plugins[i]!, cluster({ id: `h${i}`, secret, listen: { port }, membership: { static: list } })] : [cluster({ id: `h${i}`, secret, listen: { port }, membership: { static: list } }), plugins[i]!]
      return createHost({ agents: inspectAgents, workers: 1, dataDir: data, plugins: ordered })
    }))
    await Promise.all(hosts.map((h) => h.cluster.settled({ timeoutMs: 15_000 })))
    load = runLoad(hosts[0]!, 3000)
    browser = await launchBrowser()
    page = await browser.context.newPage()
    await page.setViewportSize({ width: 1400, height: 1200 })
    page.on('pageerror', (err) => pageErrors.push(err.message))
    await page.goto(plugins[0]!.url!)
    await waitInPage(page, 'window.shoalDashboard && window.shoalDashboard.connected && window.shoalDashboard.cluster !== null')
  })

  after(async () => {
    await load?.stop()
    await browser?.close()
    await Promise.all(hosts.map((h) => h.close()))
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true })
  })

  it('is served from each host\'s cluster port', async (t) => {
    t.diagnostic(`screenshots in ${dir}/screenshots`)
    for (const [i, p] of plugins.entries()) assert.equal(p.url, `http://${hosts[i]!.cluster.address}/dashboard/`)
    assert.deepEqual(pageErrors, [])
  })

  it('shows three members, their own figures, and every shard with an owner', async () => {
    await page.click('#tab-cluster')
    // each host answers with its own figures, over the links
    await waitInPage(page, 'window.shoalDashboard.cluster.hosts.length === 3 && window.shoalDashboard.cluster.hosts.every((h) => h.sample !== null && h.sample.cluster !== null)')
    const c = await page.evaluate<{ epoch: number, hosts: Array<{ id: string, state: string, sample: { host: string, cluster: { shardsServed: number, links: unknown[] } } }> }>('window.shoalDashboard.cluster')
    assert.deepEqual(c.hosts.map((h) => [h.id, h.state, h.sample.host]), [['h0', 'up', 'h0'], ['h1', 'up', 'h1'], ['h2', 'up', 'h2']])
    assert.equal(c.hosts.reduce((n, h) => n + h.sample.cluster.shardsServed, 0), 4096, 'the hosts serve every shard between them')
    for (const h of c.hosts) assert.equal(h.sample.cluster.links.length, 2)
    assert.equal(await page.locator('#members tr').count(), 3)

    await waitInPage(page, 'window.shoalDashboard.mapOwned === 4096')
    const map = await page.evaluate<{ hosts: string[], owner: number[] }>('window.shoalDashboard.map')
    assert.deepEqual(map.hosts, ['h0', 'h1', 'h2'])
    assert.equal(map.owner.length, 4096)
    assert.ok(map.owner.every((o) => o >= 0 && o < 3), 'every shard has an owner')
    assert.match(await page.textContent('#map-owned') ?? '', /^4,096 of 4,096 shards have an owner/)
    assert.equal(await page.locator('#links tr').count(), 6, 'two links per host, seen from each end')
    assert.equal(await page.locator('#traffic tr').count(), 3)
    await screenshot(page, dir, 'cluster')
  })

  it('looks up an agent that lives on another host', async () => {
    const key = Array.from({ length: 200 }, (_, i) => `far-${i}`).find((k) => hosts[0]!.cluster.ownerOf({ type: 'ledger', key: k }) === 'h2')!
    await hosts[0]!.ref('ledger', key).call('put', { key: 'note', value: 'from h0' })
    await page.click('#tab-agent')
    await page.selectOption('#lookup-type', 'ledger')
    await page.fill('#lookup-key', key)
    await page.click('#lookup-form button[type=submit]')
    await waitInPage(page, 'window.shoalDashboard.lookup !== null')
    const m = await page.evaluate<{ ok: boolean, error?: string, result: { host: string, served: boolean, active: boolean, stateText: string, storageKeys: string[] } }>('window.shoalDashboard.lookup')
    assert.equal(m.ok, true, m.error)
    assert.equal(m.result.host, 'h2')
    assert.equal(m.result.served, true)
    assert.equal(m.result.active, true)
    assert.deepEqual(JSON.parse(m.result.stateText), { entries: 1, owner: '' })
    assert.deepEqual(m.result.storageKeys, ['note'])
    assert.match(await page.textContent('#lookup-result') ?? '', /h2/)
    await screenshot(page, dir, 'cluster-agent')
    await page.click('#tab-host')
    await screenshot(page, dir, 'cluster-host')
  })
})
