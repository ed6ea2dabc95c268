/**
 * Redelivery of durable sends (see native-free-core/runtime/durable-outbox.ts).
 *
 * A stored send is normally applied within milliseconds of its sender's commit, and its
 * record removed with that turn (claim mode) or on the receiver's acknowledgement (dedup
 * mode). A record can be left behind when its frame was lost:
 * the process died between the sender's commit and the receiver's, or the receiver's
 * worker restarted and the rings to it were replaced. So each thread, for the agents it
 * owns, delivers again:
 *   - every stored send, when it starts (a new host on old data, or a restarted worker);
 *   - every send seen stored at two scans in a row, `intervalMs` apart, ever after —
 *     older than one interval, so sends still on their way are left alone.
 * A copy of a send that was applied meanwhile is dropped by the runtime.
 */
import type { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { OutboxRecord, Store } from '../../native-free-core/storage/store.ts'

export const OUTBOX_RETRY_MS = 1000

export class OutboxRedelivery {
  private readonly runtime: ShardRuntime
  private readonly store: Store
  private readonly owns: (hash: number) => boolean
  private readonly wake: () => void
  /** Identities (origin + key) seen stored at the last scan. */
  private seen = new Set<string>()
  private timer: NodeJS.Timeout | null = null

  /** Cluster: is the sender's shard served here? (Records of other shards are copies or stale.) */
  private readonly senderServed: ((shard: number) => boolean) | undefined

  constructor (runtime: ShardRuntime, store: Store, owns: (hash: number) => boolean, wake: () => void, senderServed?: (shard: number) => boolean) {
    this.senderServed = senderServed
    this.runtime = runtime
    this.store = store
    this.owns = owns
    this.wake = wake
  }

  /** Deliver every stored send for this thread's agents, then keep watching. */
  start (intervalMs = OUTBOX_RETRY_MS): void {
    this.scan(true)
    this.timer = setInterval(() => this.scan(false), intervalMs)
    this.timer.unref() // never what keeps a process alive
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  private scan (all: boolean): void {
    const now = new Set<string>()
    const due: OutboxRecord[] = []
    const served = this.senderServed
    for (const r of this.store.outbox()) {
      if (served !== undefined && !served(r.senderShard)) continue
      const name = r.origin + r.key
      now.add(name)
      // the store's bytes may be a reused view: keep a copy of those delivered
      if (all || this.seen.has(name)) due.push({ senderShard: r.senderShard, origin: r.origin, key: r.key, bytes: r.bytes.slice() })
    }
    this.seen = now
    if (due.length !== 0 && this.runtime.redeliver(due, this.owns) !== 0) this.wake()
  }
}
