/**
 * Agent counts per quota, in shared memory: every thread that owns agents reads every
 * count and writes only its own column, so counting never contends on one word.
 *
 *   chunk k (slots k×1024 … k×1024+1023), Int32 words, column-major:
 *
 *     column 0            base: what this host's threads do not count themselves — the
 *                         committed agents when the host started, plus shard ranges
 *                         imported minus dropped since (cluster moves), plus the other
 *                         hosts' counts (a cluster); only the main thread writes it
 *     columns 1 … T       count[t]: agents thread t created (reserved or committed) minus
 *                         those it deleted, since it started
 *     columns T+1 … 2T    held[t]: of count[t], reservations not yet committed
 *
 *   total(slot) = base + Σ count[t]          (held is never added: it is part of count)
 *
 * `held` exists for one reason: when a worker dies, its uncommitted reservations died
 * with it, so the host subtracts held[t] from count[t] (durable store), or clears both
 * (memory store, whose agents died too). Only the dead thread wrote those words, so
 * the host can fix them without racing anyone.
 *
 * Soft limit. A thread checks `total(slot) < limit` and then adds 1 to its own column:
 * two steps, with loads of the other columns taken one at a time. Two threads can pass
 * their checks before either's increment is visible, so creations racing on T threads
 * can overshoot the limit by at most T − 1 (each thread by at most one: its next check
 * sees its own increment and everything that was visible before it). The proof and a
 * test that replays interleavings step by step are in test/core/quota-overshoot.test.ts.
 *
 * Chunks are allocated by the main thread as quotas get slots and handed to the other
 * threads with the quota's control message; a chunk is never moved or resized, so a
 * thread can keep using the views it has.
 */

/** Slots per chunk. */
export const QUOTA_CHUNK = 1024

export class QuotaCounters {
  /** Threads that may own agents (the main thread is thread 0). */
  readonly threads: number
  readonly chunks: SharedArrayBuffer[] = []
  private readonly views: Int32Array[] = []

  constructor (threads: number, chunks: readonly SharedArrayBuffer[] = []) {
    this.threads = threads
    for (const c of chunks) this.attach(c)
    // slot 0 is the 'default' quota, which always exists
    if (chunks.length === 0) this.ensure(0)
  }

  /** Bytes of one chunk. */
  static chunkBytes (threads: number): number {
    return QUOTA_CHUNK * (1 + 2 * threads) * 4
  }

  /** Main thread: make sure `slot` has memory; returns the chunk it allocated, if any. */
  ensure (slot: number): SharedArrayBuffer | null {
    if (slot < this.views.length * QUOTA_CHUNK) return null
    const chunk = new SharedArrayBuffer(QuotaCounters.chunkBytes(this.threads))
    this.attach(chunk)
    return chunk
  }

  /** Another thread: use a chunk the main thread allocated (they arrive in order). */
  attach (chunk: SharedArrayBuffer): void {
    this.chunks.push(chunk)
    this.views.push(new Int32Array(chunk))
  }

  has (slot: number): boolean {
    return slot < this.views.length * QUOTA_CHUNK
  }

  /** One column's word for a slot (the step a reservation's check repeats per column). */
  load (slot: number, column: number): number {
    return Atomics.load(this.views[(slot / QUOTA_CHUNK) | 0]!, column * QUOTA_CHUNK + (slot % QUOTA_CHUNK))
  }

  /** Agents counted in a quota: base + every thread's count. */
  total (slot: number): number {
    let n = this.load(slot, 0)
    for (let t = 0; t < this.threads; t++) n += this.load(slot, 1 + t)
    return n
  }

  /** Thread `thread`'s count (reservations included). */
  count (slot: number, thread: number): number {
    return this.load(slot, 1 + thread)
  }

  held (slot: number, thread: number): number {
    return this.load(slot, 1 + this.threads + thread)
  }

  /** Change thread `thread`'s count, and its held reservations by `held` (only that thread calls this). */
  add (slot: number, thread: number, delta: number, held: number): void {
    const v = this.views[(slot / QUOTA_CHUNK) | 0]!
    const i = slot % QUOTA_CHUNK
    // held first when it grows, count first when held shrinks: a reader of `held` never
    // sees more reservations than the count holds
    if (held > 0) Atomics.add(v, (1 + this.threads + thread) * QUOTA_CHUNK + i, held)
    if (delta !== 0) Atomics.add(v, (1 + thread) * QUOTA_CHUNK + i, delta)
    if (held < 0) Atomics.add(v, (1 + this.threads + thread) * QUOTA_CHUNK + i, held)
  }

  /** Main thread, at start: the committed count read from the store. */
  setBase (slot: number, n: number): void {
    Atomics.store(this.views[(slot / QUOTA_CHUNK) | 0]!, slot % QUOTA_CHUNK, n)
  }

  /** Main thread: agents counted elsewhere came or went (a shard range moved; another host's count changed). */
  addBase (slot: number, delta: number): void {
    Atomics.add(this.views[(slot / QUOTA_CHUNK) | 0]!, slot % QUOTA_CHUNK, delta)
  }

  /**
   * Main thread, after `thread` died (nobody else writes its words): drop its uncommitted
   * reservations, and with `lostCommitted` (a memory store died with it) its whole count.
   */
  resetThread (thread: number, lostCommitted: boolean): void {
    for (const v of this.views) {
      for (let i = 0; i < QUOTA_CHUNK; i++) {
        const heldAt = (1 + this.threads + thread) * QUOTA_CHUNK + i
        const countAt = (1 + thread) * QUOTA_CHUNK + i
        if (lostCommitted) Atomics.store(v, countAt, 0)
        else Atomics.sub(v, countAt, Atomics.load(v, heldAt))
        Atomics.store(v, heldAt, 0)
      }
    }
  }
}
