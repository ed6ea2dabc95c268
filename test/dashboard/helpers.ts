/** What the dashboard's browser tests share: a load to watch, pixels on the charts, screenshots. */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import type { Host } from '../../src/index.ts'

export const inspectAgents = new URL('../fixtures/inspect-agents.js', import.meta.url)

/**
 * Casts and calls to `agents` counters until stopped, yielding to the event loop between
 * chunks (the dashboard's timer and sockets run on this thread too).
 */
export function runLoad (host: Host, agents = 20_000): { stop: () => Promise<void> } {
  let running = true
  const done = (async () => {
    let i = 0
    while (running) {
      for (let j = 0; j < 1000; j++) host.ref('counter', `k${i++ % agents}`).cast('add', 1)
      // a worker the test kills fails the calls it owed: the load goes on
      await host.ref('counter', `k${i % agents}`).call('get').catch(() => {})
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  })()
  return { stop: async () => { running = false; await done } }
}

/** Per chart container: its canvas width and how many of its pixels are painted. Page code as a string: the project compiles without the DOM typings. */
export async function paintedCharts (page: Page): Promise<Array<{ id: string, width: number, painted: number }>> {
  return await page.evaluate(`
    [...document.querySelectorAll('.chart > div')].map((el) => {
      const canvas = el.querySelector('canvas')
      if (canvas === null) return { id: el.id, width: 0, painted: 0 }
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
      let painted = 0
      for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++
      return { id: el.id, width: canvas.width, painted }
    })`)
}

/** Save a full-page screenshot under `dir`/screenshots; returns its path. */
export async function screenshot (page: Page, dir: string, name: string): Promise<string> {
  const shots = join(dir, 'screenshots')
  mkdirSync(shots, { recursive: true })
  const path = join(shots, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

export async function until (what: string, ready: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/**
 * Poll an expression in the page until it is truthy. Not playwright's waitForFunction:
 * its polling evaluates strings with eval, which the dashboard's Content-Security-Policy
 * (no 'unsafe-eval') refuses, as it should.
 */
export async function waitInPage (page: Page, expression: string, timeoutMs = 15_000): Promise<void> {
  await until(expression, async () => Boolean(await page.evaluate(expression)), timeoutMs)
}
