/**
 * The `--html` report, as a person would see it: written by a real CLI run, opened
 * from disk (file://, network closed) in headless Chromium (test/helpers/browser.ts:
 * Debian's `chromium`, or the one inside @sparticuz/chromium), and checked that both
 * uPlot charts drew pixels on their canvases and that the table and figures are on the page.
 *
 * Opened twice: in `en-US`, and in `en-US@posix` — what Chromium reports as
 * `navigator.language` under LANG=C.UTF-8, a tag that `Intl` refuses. The report must not
 * care: its numbers are formatted the same under both.
 *
 * Chromium is required, not optional: without one that starts, this test fails and says
 * what to install, rather than skipping and passing.
 */
import { strict as assert } from 'node:assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, before, describe, it } from 'node:test'
import type { Page } from 'playwright-core'
import { launchBrowser } from '../helpers/browser.ts'
import type { LaunchedBrowser } from '../helpers/browser.ts'
import { runCli, smallRun, tempDir } from './run-cli.ts'

const locales = ['en-US', 'en-US@posix']

describe('shoal bench --html', () => {
  let dir: string
  let cleanup: () => void
  let file: string
  let html: string
  const legendsByLocale = new Map<string, string[]>()

  before(async () => {
    ;[dir, cleanup] = tempDir()
    file = join(dir, 'report.html')
    const run = await runCli([...smallRun, '--memory', '--html', file])
    assert.equal(run.code, 0, run.stderr)
    html = readFileSync(file, 'utf8')
  })

  after(() => cleanup?.())

  it('is self-contained: no external script or style', () => {
    assert.doesNotMatch(html, /<script[^>]+src=/)
    assert.doesNotMatch(html, /<link[^>]+stylesheet/)
    assert.match(html, /uPlot/)
  })

  for (const locale of locales) {
    describe(`opened in Chromium with the locale ${locale}`, () => {
      let browser: LaunchedBrowser | null = null
      let page: Page
      const pageErrors: string[] = []
      const requests: string[] = []

      before(async () => {
        browser = await launchBrowser({ locale })
        page = await browser.context.newPage()
        page.on('pageerror', (err) => pageErrors.push(err.message))
        page.on('request', (req) => { if (!req.url().startsWith('file:') && !req.url().startsWith('data:')) requests.push(req.url()) })
        await page.goto(pathToFileURL(file).href)
        // a page that threw will never finish: let the tests below say why, at once
        if (pageErrors.length === 0) await page.waitForFunction('window.shoalCharts === 4', undefined, { timeout: 10_000 })
      })

      after(async () => { await browser?.close() })

      it('runs with no error and no request', async (t) => {
        if (browser !== null) t.diagnostic(`${browser.chromium.source}: ${browser.chromium.executablePath}`)
        assert.equal(await page.evaluate('navigator.language'), locale)
        assert.deepEqual(pageErrors, [])
        assert.deepEqual(requests, [])
      })

      it('draws every chart: canvases with pixels on them', async () => {
        assert.equal(await page.evaluate('window.shoalCharts'), 4, `charts drawn; page errors: ${pageErrors.join('; ')}`)
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
        assert.deepEqual(charts.map((c) => c.id), ['throughput', 'memory', 'latency-query', 'latency-command'])
        for (const c of charts) {
          assert.ok(c.width > 100, `${c.id}: canvas has a size`)
          assert.ok(c.painted > 1000, `${c.id}: ${c.painted} painted pixels`)
        }
        const legends = await page.locator('.u-legend .u-label').allTextContents()
        for (const label of ['messages delivered/s', 'RSS (MiB)', 'resident agents', 'p99 (µs)', 'p99.9 (µs)', 'target p99 at 50% (µs)']) {
          assert.ok(legends.includes(label), label)
        }
      })

      it('shows the values under the cursor in the legend', async () => {
        await page.locator('#memory .u-over').hover({ timeout: 5_000 })
        await page.waitForFunction(`[...document.querySelectorAll('#memory .u-legend .u-value')].every((el) => /\\d/.test(el.textContent))`,
          undefined, { timeout: 5_000 })
        const values = await page.locator('#memory .u-legend .u-value').allTextContents()
        assert.equal(values.length, 4)
        // the table's rule, not Intl's: whole numbers from 100 grouped as 1,234, else 3 significant digits
        for (const v of values) assert.match(v, /^(\d{1,3}(,\d{3})*|\d{1,2}\.\d{1,2}|0\.\d+)$/)
        legendsByLocale.set(locale, values)
      })

      it('shows the summary table with the figures and their targets', async () => {
        const rows = await page.locator('tbody tr').allTextContents()
        assert.ok(rows.some((r) => r.includes('activations/s')))
        assert.ok(rows.some((r) => /command p99 at 50% of max.*raw fsync p99.*≤ baseline \+ 2,000 µs/.test(r)))
        assert.ok(rows.some((r) => r.includes('longest GC pause during fanout')))
        assert.ok(rows.some((r) => r.includes('bytes per agent beyond state')))
        assert.ok(rows.some((r) => r.includes('raw ring')))
        assert.ok(rows.some((r) => /met|MISSED/.test(r)))
        assert.match(await page.title(), /Shoal bench — 2,000 agents/)
      })
    })
  }

  it('formats the numbers the same under every locale', () => {
    const [first, ...rest] = locales.map((l) => legendsByLocale.get(l))
    assert.ok(first !== undefined)
    for (const other of rest) assert.deepEqual(other, first)
  })
})
