/**
 * Doorbell: how a thread with no work sleeps without blocking its event loop, and how
 * producers wake it — an eventcount on one SharedArrayBuffer word.
 *
 *   word kSeq       bumped by a producer that found the owner asleep; the sleeper waits on it
 *   word kSleeping  1 while the owner is (about to be) parked
 *
 * (separate 64-byte lines so the sleeper's flag and the producers' bumps do not false-share)
 *
 * Owner:                                   Producer (after publishing its ring tail):
 *   seq = announceSleep()  // kSleeping=1    if (load kSleeping == 1 && CAS(kSleeping, 1 → 0))
 *   if (work visible) cancelSleep()            add kSeq; notify kSeq
 *   else await wait(seq)   // waitAsync(kSeq, seq)
 *
 * Because the producer's tail store and the owner's kSleeping store are both
 * sequentially consistent, either the owner's re-check sees the new tail or the
 * producer sees kSleeping == 1 and rings. Only one producer wins the CAS, so a burst
 * of publishes costs one `Atomics.notify` (a futex syscall), not one each.
 *
 * The owner parks with `Atomics.waitAsync`, so its event loop keeps serving LMDB
 * callbacks, timers and control messages. Note (Node 20): a pending waitAsync does not
 * keep a worker alive by itself; the host keeps a `parentPort` listener for that.
 */

export const DOORBELL_BYTES = 128
const kSeq = 0
const kSleeping = 16

export class Doorbell {
  readonly words: Int32Array

  constructor (sab: SharedArrayBuffer, byteOffset = 0) {
    this.words = new Int32Array(sab, byteOffset, DOORBELL_BYTES / 4)
  }

  static create (): Doorbell {
    return new Doorbell(new SharedArrayBuffer(DOORBELL_BYTES))
  }

  /** Producer side: wake the owner if it is parked or about to park. Cheap when it is awake. */
  ring (): void {
    const w = this.words
    if (Atomics.load(w, kSleeping) !== 0 && Atomics.compareExchange(w, kSleeping, 1, 0) === 1) {
      Atomics.add(w, kSeq, 1)
      Atomics.notify(w, kSeq)
    }
  }

  /** Owner side: announce the intent to sleep; re-check for work afterwards, then `wait`. */
  announceSleep (): number {
    const seq = Atomics.load(this.words, kSeq)
    Atomics.store(this.words, kSleeping, 1)
    return seq
  }

  cancelSleep (): void {
    Atomics.store(this.words, kSleeping, 0)
  }

  /**
   * Park until a producer rings (or `timeoutMs` passes). Returns `null` when a ring
   * already happened since `announceSleep`, so the caller can run again at once.
   */
  wait (seq: number, timeoutMs?: number): Promise<unknown> | null {
    const r = Atomics.waitAsync(this.words, kSeq, seq, timeoutMs)
    if (!r.async) { this.cancelSleep(); return null }
    return r.value
  }

  get sleeping (): boolean {
    return Atomics.load(this.words, kSleeping) !== 0
  }
}
