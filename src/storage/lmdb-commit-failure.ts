/**
 * What lmdb-js (3.5.6) does with a write transaction that fails, and how this engine keeps
 * a failed commit from ending the thread.
 *
 * lmdb-js rejects every write of the failed transaction with a generic `Commit failed (see
 * commitError for details)` and rejects the real cause (`MDB_MAP_FULL`, `ENOSPC`, ...) on a
 * promise of its own, `error.commitError`, that nothing handles (kriszyp/lmdb-js#368). It
 * also rejects the promise of the batch it starts for each event turn, which it keeps to
 * itself. Under Node's default `--unhandled-rejections=throw` either one ends the thread
 * although the engine handles the failure of its own writes (the commit's callers get a
 * `StorageError`, nothing is acknowledged).
 */

const PENDING = Symbol('pending')

/** lmdb-js's generic error for a write of a failed transaction. */
export function isLmdbCommitFailure (err: unknown): boolean {
  return err instanceof Error && err.message === 'Commit failed (see commitError for details)' &&
    typeof (err as { commitError?: { then?: unknown } }).commitError?.then === 'function'
}

/**
 * `written`, whose failure carries lmdb-js's real cause instead of the generic error, and
 * whose cause's promise is handled. lmdb-js rejects the cause in the same callback that
 * fails the writes, so it is known by the time this runs; if it is not (another path),
 * the generic error stands.
 */
export function withCommitCause<T> (written: Promise<T>): Promise<T> {
  return written.then(undefined, async (err: unknown) => {
    if (!isLmdbCommitFailure(err)) throw err
    const cause = (err as { commitError: Promise<unknown> }).commitError
    let real: unknown = err
    try {
      await Promise.race([cause, Promise.resolve(PENDING)])
    } catch (e) {
      real = e
    }
    cause.then(undefined, () => {})
    throw real
  })
}

let guarded = false

/**
 * On a thread this engine owns (a worker): let lmdb-js's rejections of a failed
 * transaction that it keeps to itself pass, and treat every other unhandled rejection as
 * Node's default does (thrown: the thread ends). Not for the main thread, whose
 * unhandled-rejection policy belongs to the application.
 */
export function guardLmdbCommitFailures (): void {
  if (guarded) return
  guarded = true
  process.on('unhandledRejection', (reason: unknown) => {
    if (!isLmdbCommitFailure(reason)) throw reason
    // the cause is rejected after the writes, in the same callback: handled before Node
    // gets to report it
    ;(reason as { commitError: Promise<unknown> }).commitError.then(undefined, () => {})
  })
}
