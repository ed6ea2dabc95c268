/**
 * The browser the tests use: the first Chromium that starts, and a failure that says what
 * to install when none does. Stale browsers are stand-in scripts that fail the way a
 * half-removed package does (the dynamic loader's message, exit 127).
 */
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { chromium } from 'playwright-core'
import { tempDir } from '../cli/run-cli.ts'
import { chromiumArgs, findChromium, launchBrowser } from './browser.ts'

describe('launchBrowser', () => {
  let dir: string
  let cleanup: () => void
  let stale: string

  before(() => {
    ;[dir, cleanup] = tempDir()
    stale = join(dir, 'chromium')
    writeFileSync(stale, '#!/bin/sh\necho "/usr/lib/chromium/chromium: error while loading shared libraries: libgtk-3.so.0: ' +
      'cannot open shared object file: No such file or directory" >&2\nexit 127\n')
    chmodSync(stale, 0o755)
  })

  after(() => cleanup?.())

  it('passes over a Debian chromium that cannot start for the one in @sparticuz/chromium', async () => {
    const browser = await launchBrowser({ search: { shoalChromium: '', debianChromium: stale } })
    try {
      assert.equal(browser.chromium.source, '@sparticuz/chromium')
      const page = await browser.context.newPage()
      assert.equal(await page.evaluate('6 * 7'), 42)
    } finally {
      await browser.close()
    }
  })

  it('SHOAL_CHROMIUM=@sparticuz/chromium takes the npm-shipped one and nothing else', async () => {
    const browser = await launchBrowser({ search: { shoalChromium: '@sparticuz/chromium', debianChromium: stale } })
    await browser.close()
    assert.equal(browser.chromium.source, 'SHOAL_CHROMIUM=@sparticuz/chromium')
    await assert.rejects(launchBrowser({ search: { shoalChromium: '@sparticuz/not-installed', bundledChromium: '@sparticuz/not-installed' } }),
      /SHOAL_CHROMIUM=@sparticuz\/not-installed: the devDependency is not installed[^]*unset it/)
  })

  it('a SHOAL_CHROMIUM that cannot start is an error that names it and says why, not a fallback', async () => {
    await assert.rejects(launchBrowser({ search: { shoalChromium: stale } }), (err: Error) => {
      assert.match(err.message, new RegExp(`SHOAL_CHROMIUM=${stale}: cannot start: .*libgtk-3\\.so\\.0`))
      assert.match(err.message, /unset it to use Debian's chromium or the one in @sparticuz\/chromium/)
      return true
    })
    await assert.rejects(launchBrowser({ search: { shoalChromium: join(dir, 'missing') } }), /SHOAL_CHROMIUM=.*missing: no such file/)
  })

  it('when no Chromium starts, fails with each reason and what to install', async () => {
    await assert.rejects(
      launchBrowser({ search: { shoalChromium: '', debianChromium: stale, bundledChromium: '@sparticuz/not-installed' } }),
      (err: Error) => {
        assert.match(err.message, /No Chromium could start/)
        assert.match(err.message, /Debian's chromium .*: cannot start: .*libgtk-3\.so\.0/)
        assert.match(err.message, /@sparticuz\/not-installed: the devDependency is not installed \(run `npm install`\)/)
        assert.match(err.message, /`npm install`.*apt-get install -y chromium.*SHOAL_CHROMIUM/)
        return true
      })
  })

  it('chromiumArgs start the chosen Chromium without playwright\'s launcher: DevTools on 127.0.0.1 runs the page', async () => {
    const { executablePath } = await findChromium()
    const child = spawn(executablePath, [...chromiumArgs(join(dir, 'profile')), '--remote-debugging-port=0', 'about:blank'],
      { stdio: ['ignore', 'ignore', 'pipe'] })
    try {
      const endpoint = await new Promise<string>((resolve, reject) => {
        let err = ''
        child.stderr.setEncoding('utf8').on('data', (d: string) => {
          err += d
          const m = /DevTools listening on (ws:\/\/127\.0\.0\.1:\d+\/\S+)/.exec(err)
          if (m?.[1] !== undefined) resolve(m[1])
        })
        child.on('exit', (code) => { reject(new Error(`exited ${code}: ${err}`)) })
      })
      const browser = await chromium.connectOverCDP(endpoint)
      const context = browser.contexts()[0] ?? await browser.newContext()
      const page = await context.newPage()
      const file = join(dir, 'page.html')
      writeFileSync(file, '<body><script>document.body.textContent = "ran " + (6 * 7)</script></body>')
      await page.goto(pathToFileURL(file).href)
      assert.equal(await page.evaluate('document.body.textContent'), 'ran 42')
      await browser.close()
    } finally {
      child.kill('SIGKILL')
    }
  })
})
