/** Durable-store test helpers: hosts on a real LMDB directory under the OS temp dir. */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHost } from '../../src/index.ts'
import type { Host, HostOptions } from '../../src/index.ts'
import type { RootDatabase } from 'lmdb'
import assert from 'node:assert/strict'
import type { LmdbStore } from '../../src/storage/lmdb-store.ts'

export const durableAgentsUrl = new URL('../fixtures/durable-agents.js', import.meta.url)

/** A fresh data directory, removed when the process exits. */
export function tempDataDir (): string {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-test-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export function durableHost (dataDir: string, options: Partial<HostOptions> = {}): Promise<Host> {
  return createHost({ agents: durableAgentsUrl, workers: 2, dataDir, ...options })
}

/** An AgentError (the handler threw) whose original error had `code`. */
export function agentErrorWith (code: string): (err: unknown) => boolean {
  return (err) => {
    const e = err as { code?: string, data?: { code?: string } }
    return e.code === 'SHOAL_ERR_AGENT' && e.data?.code === code
  }
}

/**
 * Run a child process (a fixture script with `args`) until it has printed more than
 * `acks` lines, then SIGKILL it: every line it printed. Its stdout is a pipe, synchronous
 * on Linux, so a printed line happened before anything the child did after it.
 */
export function runAndKill (script: URL, args: readonly string[], acks: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script.pathname, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let buffered = ''
    const lines: string[] = []
    let killed = false
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk
      let nl: number
      while ((nl = buffered.indexOf('\n')) >= 0) {
        lines.push(buffered.slice(0, nl))
        buffered = buffered.slice(nl + 1)
      }
      if (!killed && lines.length > acks) {
        killed = true
        child.kill('SIGKILL')
      }
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child ended by itself (code ${code})`))
      else resolve(lines)
    })
  })
}

/**
 * The durable child's acknowledgements (test/fixtures/durable-child.ts, 'tally'): after its
 * `ready` line, one `key n` line per acknowledged command; the highest n per key.
 */
export function acknowledgedTallies (lines: readonly string[]): Map<string, number> {
  assert.equal(lines[0], 'ready')
  const acked = new Map<string, number>()
  for (const line of lines.slice(1)) {
    const [key, n] = line.split(' ')
    acked.set(key!, Math.max(acked.get(key!) ?? 0, Number(n)))
  }
  assert.ok(acked.size > 0)
  return acked
}

/** Run a child process (a fixture script with `args`) until it ends by itself: its exit code and the lines it printed. */
export function runToEnd (script: URL, args: readonly string[]): Promise<{ code: number | null, lines: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script.pathname, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => { out += chunk })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, lines: out.split('\n').filter((l) => l !== '') }))
  })
}

/**
 * A write LMDB itself refuses inside the write transaction (not lmdb-js before queuing it):
 * a value too large for a dupSort database, put through a second handle opened without
 * dupSort. Put in the same event turn as a commit, it fails that commit's whole transaction.
 */
export function poisoner (store: LmdbStore): Promise<() => void> {
  const env = (store as unknown as { env: RootDatabase }).env
  const dup = env.openDB<Buffer, Buffer>({ name: 'poison', dupSort: true, encoding: 'binary', keyEncoding: 'binary' })
  return dup.put(Buffer.from('x'), Buffer.alloc(8)).then(() => {
    const plain = env.openDB<Buffer, Buffer>({ name: 'poison', encoding: 'binary', keyEncoding: 'binary' })
    return () => { plain.put(Buffer.from('y'), Buffer.alloc(4000)).catch(() => {}) }
  })
}

/**
 * lmdb-js leaves two promises of a failed transaction unhandled (its batch-start promise and
 * `commitError`): tolerated while `run` runs — the test runner's own listener is set aside
 * meanwhile — and nothing else is.
 */
export async function toleratingFailedCommits (run: () => Promise<void>): Promise<void> {
  const other: unknown[] = []
  const onRejection = (err: unknown): void => {
    const e = err as { message?: string, code?: number }
    if (e?.code !== -30781 && !String(e?.message).startsWith('Commit failed')) other.push(err)
  }
  const runner = process.listeners('unhandledRejection')
  process.removeAllListeners('unhandledRejection')
  process.on('unhandledRejection', onRejection)
  try {
    await run()
    await new Promise((resolve) => setTimeout(resolve, 50))
  } finally {
    process.off('unhandledRejection', onRejection)
    for (const l of runner) process.on('unhandledRejection', l)
  }
  assert.deepEqual(other, [])
}
