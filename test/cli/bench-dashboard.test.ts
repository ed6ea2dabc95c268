/**
 * `shoal bench --dashboard`: the built CLI, run as a user runs it, prints the dashboard's
 * URL once its host is up; the page answers there while the run lasts, its WebSocket
 * pushes samples of the run, and the run ends as usual.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { WebSocket } from 'ws'
import { mainJs } from './run-cli.ts'

test('shoal bench --dashboard serves the page during the run and prints its URL', async () => {
  const child = spawn(process.execPath, [mainJs, 'bench', '--agents', '5000', '--duration', '3', '--scenario', 'activate,fanout',
    '--memory', '--no-baselines', '--no-latest', '--plain', '--dashboard'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d
        const m = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/dashboard\/)/.exec(stdout)
        if (m !== null) resolve(m[1]!)
      })
      void exited.then(() => reject(new Error(`the run ended without a dashboard URL:\n${stdout}\n${stderr}`)))
    })
    const page = await fetch(url)
    assert.equal(page.status, 200)
    assert.match(await page.text(), /<title>Shoal dashboard<\/title>/)
    // the socket pushes samples of the running bench: agents become resident
    const resident = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${url.replace('http:', 'ws:')}ws`)
      ws.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString()) as { t: string, s?: { activeAgents: number } }
        if (m.t === 'sample' && m.s!.activeAgents > 0) { ws.close(); resolve(m.s!.activeAgents) }
      })
      ws.on('error', reject)
    })
    assert.ok(resident > 0, `resident agents ${resident}`)
    assert.equal(await exited, 0, stderr)
    assert.match(stdout, /fanout: done/)
  } finally {
    clearTimeout(timer)
    child.kill('SIGKILL')
  }
})
