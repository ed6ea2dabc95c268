/**
 * `host.close()`: stop taking calls, let in-flight work finish (up to `closeTimeoutMs`),
 * commit, and stop the workers. Calls still pending after that fail with HostClosedError.
 */
import { HostClosedError } from '../../native-free-core/errors.ts'
import type { Store } from '../../native-free-core/storage/store.ts'
import { ringDepth } from '../../native-free-core/ring/ring-queue.ts'
import type { OffloadPool } from '../offload/offload-pool.ts'
import type { OutboxRedelivery } from '../storage/outbox-redelivery.ts'
import type { LocalAcks } from '../storage/local-acks.ts'
import { kStatBusy, kStatOverflowBytes, kStatPendingCommit, kStatRunning, statsView } from '../thread/mesh.ts'
import type { Mesh } from '../thread/mesh.ts'
import type { ThreadLoop } from '../thread/thread-loop.ts'
import type { HostClock } from '../time/host-clock.ts'
import type { Follows } from './follow.ts'
import type { HostLifecycle } from './lifecycle.ts'
import type { PendingCalls } from './pending-calls.ts'
import type { WorkerSupervisor } from './workers.ts'

export interface ShutdownParts {
  readonly closeTimeoutMs: number
  readonly mesh: Mesh
  readonly loop: ThreadLoop
  readonly clock: HostClock
  readonly pending: PendingCalls
  readonly follows: Follows
  readonly workers: WorkerSupervisor
  readonly life: HostLifecycle
  readonly redelivery: OutboxRedelivery | null
  /** Dedup mode on one host (a test hook): acknowledgements to finish after the last commit. */
  readonly acks: LocalAcks | null
  readonly pool: OffloadPool | null
  readonly store: Store | null
}

/** Run once, after `life.stopping` is set (no new calls). */
export async function shutDown (parts: ShutdownParts): Promise<void> {
  const { loop, pending } = parts
  parts.clock.stop()
  const deadline = Date.now() + parts.closeTimeoutMs
  let quietChecks = 0
  while (Date.now() < deadline && quietChecks < 2) {
    await delay(quietChecks === 0 ? 1 : 2)
    quietChecks = quiescent(parts) ? quietChecks + 1 : 0
  }
  parts.life.closed = true
  await parts.workers.stop()
  if (loop.runtime !== null) {
    await loop.drainAndStop()
    await parts.acks?.finish()
  } else loop.stop()
  pending.failAll(() => new HostClosedError('the host closed before the call completed'))
  parts.follows.endAll()
  parts.redelivery?.stop()
  await parts.pool?.close()
  await parts.store?.close()
}

/** Nothing in any ring or overflow, no pass running, no turn or commit in flight, no call waiting. */
function quiescent (parts: ShutdownParts): boolean {
  if (parts.pending.size !== 0 || !parts.loop.idle) return false
  for (const row of parts.mesh.rings) for (const ring of row) if (ring != null && ringDepth(ring) !== 0) return false
  for (const t of parts.workers.threads) {
    const s = statsView(parts.mesh, t)
    if (s[kStatRunning] !== 0 || s[kStatBusy] !== 0 || s[kStatOverflowBytes] !== 0 || s[kStatPendingCommit] !== 0) return false
  }
  return true
}

function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
