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
 */
export class UnreleasedSends {
  private readonly words: BigInt64Array

  /** The shared memory for a host of `threads` threads. */
  static create (threads: number): SharedArrayBuffer {
    return new SharedArrayBuffer(threads * 16)
  }

  constructor (buffer: SharedArrayBuffer) {
    this.words = new BigInt64Array(buffer)
  }

  /** Thread `thread`'s sends not released are within [lowest, upper) (0, 0: none). */
  set (thread: number, lowest: number, upper: number): void {
    // the end first: a reader that sees the new lowest sees an end at least as far
    Atomics.store(this.words, thread * 2 + 1, BigInt(upper))
    Atomics.store(this.words, thread * 2, BigInt(lowest))
  }

  /** Is `key` (this host's store's numbering) possibly a send some thread has not released? */
  holds (key: number): boolean {
    const n = this.words.length >> 1
    for (let t = 0; t < n; t++) {
      const lowest = Number(Atomics.load(this.words, t * 2))
      if (lowest !== 0 && key >= lowest && key < Number(Atomics.load(this.words, t * 2 + 1))) return true
    }
    return false
  }
}
