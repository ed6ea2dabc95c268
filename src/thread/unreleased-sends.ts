/**
 * Durable sends a host's threads have stored but not released (cluster only; mesh.ts
 * `unreleasedSends`). A thread's commit puts its sends' outbox records in the host's LMDB
 * before the commit has settled — with replicas, before the shard's replicas have the
 * batch — and any thread's redelivery scan reads that LMDB (outbox-redelivery.ts). A
 * record whose commit has not settled must not be redelivered: if the replicas never get
 * the batch (its owner stood still past its lease and the shard failed over), the send's
 * turn is lost with it, the caller retries the turn on the new owner, which sends again
 * under a new identity — the copy that escaped would be applied as a second send
 * (native-free-core/runtime/durable-outbox.ts, `unreleased`).
 *
 * Per thread, two words: the lowest key of its sends not released (0: none) and the end
 * of the key range it may be in (its incarnation's end). Written by the thread before its
 * store holds the records (Atomics: seen by a thread that then reads them from LMDB),
 * read by every thread's scan.
 *
 * And two more per thread, the main thread's: the range a worker that died had not
 * released (`keep`, when it died). Its commits' journals may still be on their way to the
 * replicas — its local transactions committed, the records are in LMDB — and its
 * replacement's start-up redelivery reads every stored send: a copy that escaped before
 * the writes are where a failover looks for them would be applied as a second send, were
 * the host to die and the turn be retried on a replica without it (test/cluster/
 * restarted-worker-sends.test.ts). The main thread `release`s the range once they are.
 */
export class UnreleasedSends {
  private readonly words: BigInt64Array

  /** The shared memory for a host of `threads` threads. */
  static create (threads: number): SharedArrayBuffer {
    return new SharedArrayBuffer(threads * 32)
  }

  constructor (buffer: SharedArrayBuffer) {
    this.words = new BigInt64Array(buffer)
  }

  /** Thread `thread`'s sends not released are within [lowest, upper) (0, 0: none). */
  set (thread: number, lowest: number, upper: number): void {
    this.store(thread * 4, lowest, upper)
  }

  /**
   * Main thread: thread `thread` died — keep what it had not released (joined to what an
   * earlier death of the thread left kept), until `release`. Returns the range kept, or
   * null when there is none.
   */
  keep (thread: number): readonly [number, number] | null {
    const w = this.words
    const lowest = Number(Atomics.load(w, thread * 4))
    const upper = Number(Atomics.load(w, thread * 4 + 1))
    const keptLowest = Number(Atomics.load(w, thread * 4 + 2))
    const keptUpper = Number(Atomics.load(w, thread * 4 + 3))
    if (lowest === 0 && keptLowest === 0) return null
    const range: [number, number] = keptLowest === 0
      ? [lowest, upper]
      : lowest === 0 ? [keptLowest, keptUpper] : [Math.min(lowest, keptLowest), Math.max(upper, keptUpper)]
    this.store(thread * 4 + 2, range[0], range[1])
    this.set(thread, 0, 0)
    return range
  }

  /** Main thread: the range `keep` returned has landed — unless a later death of the thread widened it meanwhile. */
  release (thread: number, range: readonly [number, number]): void {
    const w = this.words
    if (Number(Atomics.load(w, thread * 4 + 2)) === range[0] && Number(Atomics.load(w, thread * 4 + 3)) === range[1]) this.store(thread * 4 + 2, 0, 0)
  }

  private store (at: number, lowest: number, upper: number): void {
    // the end first: a reader that sees the new lowest sees an end at least as far
    Atomics.store(this.words, at + 1, BigInt(upper))
    Atomics.store(this.words, at, BigInt(lowest))
  }

  /** Is `key` (this host's store's numbering) possibly a send some thread has not released, or a dead one's kept? */
  holds (key: number): boolean {
    const n = this.words.length >> 1
    for (let r = 0; r < n; r++) {
      const lowest = Number(Atomics.load(this.words, r * 2))
      if (lowest !== 0 && key >= lowest && key < Number(Atomics.load(this.words, r * 2 + 1))) return true
    }
    return false
  }
}
