/** Shared helpers for engine tests: host setup, and which worker owns an agent. */
import { createHost } from '../../src/index.ts'
import type { Host, HostOptions } from '../../src/index.ts'
import type { TestHooks } from '../../src/time/test-clock.ts'
import { hashId, shardOf } from '../../native-free-core/placement/hash.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { placeShard } from '../../src/thread/mesh.ts'

export const agentsUrl = new URL('../fixtures/agents.js', import.meta.url)

export function startHost (options: Partial<HostOptions> & TestHooks = {}): Promise<Host> {
  return createHost({ agents: agentsUrl, workers: 2, ...options })
}

/** The worker thread (1..workers) that owns an agent: the host's own placement (placeShard), not a copy of it. */
export function ownerOf (type: string, key: string, workers = 2, quota = 'default'): number {
  return placeShard(shardOf(hashId(idString(quota, type, key))), workers)
}

/** The first key `${prefix}${i}` (skipping `skip` of them) of `type` in `quota` that lands on `thread`. */
export function keyOn (thread: number, type: string, prefix = 'k', workers = 2, skip = 0, quota = 'default'): string {
  for (let i = 0, found = 0; ; i++) {
    if (ownerOf(type, `${prefix}${i}`, workers, quota) === thread && found++ === skip) return `${prefix}${i}`
  }
}
