/**
 * The `--html` report, as a person would see it: written by a real CLI run, opened
 * from disk (file://, network closed) in headless Chromium — Debian's `chromium`,
 * driven by playwright-core — and checked that both uPlot charts drew pixels on their
 * canvases and that the table and figures are on the page.
 *
 * Chromium is required, not optional: CI installs it (.ci/run). Without it this test
 * fails and says how to install it, rather than skipping and passing.
 */
import { strict as assert } from 'node:assert'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { chromium } from 'playwright-core'
import type { BrowserContext, Page } from 'playwright-core'
import { runCli, smallRun, tempDir } from './run-cli.ts'

const executablePath = process.env.SHOAL_CHROMIUM ?? '/usr/bin/chromium'

describe('shoal bench --html', () => {
  let dir: string
  let cleanup: () => void
  let html: string
  let browser: BrowserContext | null = null
  let page: Page
  const pageErrors: string[] = []
  const requests: string[] = []

  before(async () => {
    assert.ok(existsSync(executablePath),
      `Chromium not found at ${executablePath}: install Debian's package (apt-get install -y chromium) or set SHOAL_CHROMIUM`)
    ;[dir, cleanup] = tempDir()
    const file = join(dir, 'report.html')
    const run = await runCli([...smallRun, '--memory', '--html', file])
    assert.equal(run.code, 0, run.stderr)
    html = readFileSync(file, 'utf8')
    browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', '--disable-default-apps']
    })
    page = await browser.newPage()
    page.on('pageerror', (err) => pageErrors.push(err.message))
    page.on('request', (req) => { if (!req.url().startsWith('file:') && !req.url().startsWith('data:')) requests.push(req.url()) })
    await page.goto(pathToFileURL(file).href)
    await page.waitForFunction('window.shoalCharts === 2', undefined, { timeout: 10_000 })
  })

  after(async () => {
    await browser?.close()
    cleanup?.()
  })

  it('is self-contained: no external script, style or request', () => {
    assert.doesNotMatch(html, /<script[^>]+src=/)
    assert.doesNotMatch(html, /<link[^>]+stylesheet/)
    assert.match(html, /uPlot/)
    assert.deepEqual(requests, [])
    assert.deepEqual(pageErrors, [])
  })

  it('draws both charts: canvases with pixels on them', async () => {
    // page code as a string: this project compiles without the DOM typings
    const charts = await page.evaluate<Array<{ id: string, width: number, painted: number }>>(`
      [...document.querySelectorAll('.chart')].map((el) => {
        const canvas = el.querySelector('canvas')
        if (canvas === null) return { id: el.id, width: 0, painted: 0 }
        const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
        let painted = 0
        for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++
        return { id: el.id, width: canvas.width, painted }
      })`)
    assert.deepEqual(charts.map((c) => c.id), ['throughput', 'memory'])
    for (const c of charts) {
      assert.ok(c.width > 100, `${c.id}: canvas has a size`)
      assert.ok(c.painted > 1000, `${c.id}: ${c.painted} painted pixels`)
    }
    const legends = await page.locator('.u-legend .u-label').allTextContents()
    for (const label of ['messages delivered/s', 'RSS (MiB)', 'resident agents']) assert.ok(legends.includes(label), label)
  })

  it('shows the summary table with the figures and their targets', async () => {
    const rows = await page.locator('tbody tr').allTextContents()
    assert.ok(rows.some((r) => r.includes('activations/s')))
    assert.ok(rows.some((r) => r.includes('bytes per agent beyond state')))
    assert.ok(rows.some((r) => r.includes('raw ring')))
    assert.ok(rows.some((r) => /met|MISSED/.test(r)))
    assert.match(await page.title(), /Shoal bench — 2,000 agents/)
  })
})
