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
 *
 * In a cluster two more rules. A record whose commit has not settled — stored here, its
 * batch not yet acknowledged by the shard's replicas — is not the sender's to send yet
 * (`unreleased`; its own thread's runtime knows its own, unreleased-sends.ts tells the
 * others'): were the replicas never to get it, the send would be applied although its
 * turn is lost. And a host past its serving deadline (it stood still past its lease; the
 * sender's shard may be served elsewhere by now) delivers nothing until it knows again.
 */
import type { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { OutboxRecord, Store } from '../../native-free-core/storage/store.ts'

export const OUTBOX_RETRY_MS = 1000

/** What a cluster's thread adds (see above). */
export interface RedeliveryGuards {
  /** The host's threads' sends not released yet. */
  readonly unreleased: { holds (key: number): boolean }
  /** The host is past its serving deadline now. */
  pastServingDeadline (): boolean
}

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
  private readonly cluster: RedeliveryGuards | undefined

  constructor (runtime: ShardRuntime, store: Store, owns: (hash: number) => boolean, wake: () => void, senderServed?: (shard: number) => boolean, guards?: RedeliveryGuards) {
    this.senderServed = senderServed
    this.cluster = guards
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
    const guards = this.cluster
    if (guards?.pastServingDeadline() === true) return // `seen` kept: the next scan in time goes on from it
    const now = new Set<string>()
    const due: OutboxRecord[] = []
    const served = this.senderServed
    const origin = guards === undefined ? '' : this.store.storeId
    for (const r of this.store.outbox()) {
      if (served !== undefined && !served(r.senderShard)) continue
      if (guards !== undefined && r.origin === origin && guards.unreleased.holds(r.key)) continue // not released yet: not seen either
      const name = r.origin + r.key
      now.add(name)
      // the store's bytes may be a reused view: keep a copy of those delivered
      if (all || this.seen.has(name)) due.push({ senderShard: r.senderShard, origin: r.origin, key: r.key, bytes: r.bytes.slice() })
    }
    this.seen = now
    if (due.length !== 0 && this.runtime.redeliver(due, this.owns) !== 0) this.wake()
  }
}
