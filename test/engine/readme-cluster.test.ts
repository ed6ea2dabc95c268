/**
 * The README's "Cluster" section, run as written: its two files (`agents.mjs`,
 * `host.mjs`) are taken from the README itself, put in a directory inside this package
 * (so that `import 'shoal'` and `'shoal/cluster'` resolve to this build, as they would
 * from node_modules), and three hosts are started the way the section says, one process
 * each. The one change: the ports 7401–7403 become free ones, so that two test runs on
 * one machine do not meet.
 *
 * What the section claims: every host prints the same owner for `user-42` and one of
 * 1, 2, 3 (three calls, one agent, one host); Ctrl-C (SIGINT) closes each host and its
 * process ends.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../helpers/cluster-procs.ts'

// dist/test/engine/ → the repository
const root = fileURLToPath(new URL('../../../', import.meta.url))

/** The ```js blocks of the README's Cluster section, by the file name on their first line. */
function clusterFiles (): Map<string, string> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const start = readme.indexOf('\n## Cluster\n')
  assert.ok(start >= 0, 'the README has a Cluster section')
  const section = readme.slice(start + 1, readme.indexOf('\n## ', start + 1))
  const files = new Map<string, string>()
  for (const m of section.matchAll(/```js\n(\/\/ (\S+\.mjs)[^\n]*\n[\s\S]*?)```/g)) files.set(m[2]!, m[1]!)
  return files
}

test('the README Cluster example runs as written: three host processes, one owner for user-42, adds 1, 2, 3; SIGINT closes each', { timeout: 120_000 }, async () => {
  const files = clusterFiles()
  assert.deepEqual([...files.keys()].sort(), ['agents.mjs', 'host.mjs'])
  let host = files.get('host.mjs')!
  for (const port of ['7401', '7402', '7403']) {
    assert.ok(host.includes(port), `host.mjs names port ${port}`)
    host = host.replace(port, String(await freePort()))
  }
  // inside the package: `shoal` resolves by the package's self-reference, to dist/
  const dir = mkdtempSync(join(root, 'dist', '.readme-cluster-'))
  writeFileSync(join(dir, 'agents.mjs'), files.get('agents.mjs')!)
  writeFileSync(join(dir, 'host.mjs'), host)
  const procs: ChildProcess[] = []
  try {
    const lines = new Map<string, string>()
    const printed = ['a', 'b', 'c'].map((id) => new Promise<void>((resolve, reject) => {
      const p = spawn(process.execPath, ['host.mjs', id], {
        cwd: dir,
        env: { ...process.env, SHOAL_CLUSTER_SECRET: 'the README example secret, at least 32 bytes' },
        stdio: ['ignore', 'pipe', 'pipe']
      })
      procs.push(p)
      let out = ''
      let err = ''
      p.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d
        const line = out.split('\n').find((l) => l.startsWith(`${id}: `))
        if (line !== undefined && !lines.has(id)) {
          lines.set(id, line)
          resolve()
        }
      })
      p.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d })
      p.once('exit', (code) => reject(new Error(`host ${id} exited (${code}) before printing:\n${out}\n${err}`)))
    }))
    await Promise.all(printed)
    const parsed = [...lines.values()].map((l) => /^([abc]): user-42 lives on ([abc]), add → (\d+)$/.exec(l))
    assert.ok(parsed.every((m) => m !== null), [...lines.values()].join('\n'))
    assert.equal(new Set(parsed.map((m) => m![2])).size, 1, `one owner: ${[...lines.values()].join(' | ')}`)
    assert.deepEqual(parsed.map((m) => Number(m![3])).sort(), [1, 2, 3])

    for (const p of procs) p.removeAllListeners('exit')
    const exits = procs.map((p) => new Promise<string>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) resolve(String(p.exitCode ?? p.signalCode))
      else p.once('exit', (code, signal) => resolve(String(code ?? signal)))
    }))
    // each printed after its SIGINT handler was in place (the README installs it first)
    for (const p of procs) p.kill('SIGINT')
    assert.deepEqual(await Promise.all(exits), ['0', '0', '0'], 'Ctrl-C closes each host and its process ends')
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})
