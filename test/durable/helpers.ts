/** Durable-store test helpers: hosts on a real LMDB directory under the OS temp dir. */
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
