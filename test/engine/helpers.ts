/** Shared helpers for engine tests: host setup and placement arithmetic. */
import { createHost } from '../../src/index.ts'
import type { Host, HostOptions } from '../../src/index.ts'
import type { TestHooks } from '../../src/time/test-clock.ts'
import { hashId, shardOf } from '../../native-free-core/placement/hash.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'

export const agentsUrl = new URL('../fixtures/agents.js', import.meta.url)

export function startHost (options: Partial<HostOptions> & TestHooks = {}): Promise<Host> {
  return createHost({ agents: agentsUrl, workers: 2, ...options })
}

/** The worker thread (1..workers) that owns an agent: the host's default placement. */
export function ownerOf (type: string, key: string, workers = 2): number {
  return 1 + (shardOf(hashId(idString('default', type, key))) % workers)
}

/** The first key `${prefix}${i}` that lands on `thread`. */
export function keyOn (thread: number, type: string, prefix = 'k', workers = 2, skip = 0): string {
  for (let i = 0, found = 0; ; i++) {
    if (ownerOf(type, `${prefix}${i}`, workers) === thread && found++ === skip) return `${prefix}${i}`
  }
}
