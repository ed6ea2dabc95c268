/** Durable-store test helpers: hosts on a real LMDB directory under the OS temp dir. */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHost } from '../../src/index.ts'
import type { Host, HostOptions } from '../../src/index.ts'

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
