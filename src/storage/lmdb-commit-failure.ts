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
 * How long a failed write waits for its transaction's cause. lmdb-js rejects the cause in
 * the writer's completion callback, usually in the same call that fails the writes — but
 * the writes are failed by whichever path first sees the transaction's status, and under
 * load that can be an earlier one (another write's resolution), the cause following in the
 * completion callback a little later: the generic error then stood (seen in full-suite runs
 * at load 5–12: test/durable/commit-failure.test.ts got no code). A commit that failed has
 * its callback on the way; the bound is for a path that never rejects the cause.
 */
const CAUSE_WAIT_MS = 1_000

/**
 * `written`, whose failure carries lmdb-js's real cause instead of the generic error, and
 * whose cause's promise is handled. If the cause does not come within CAUSE_WAIT_MS, the
 * generic error stands.
 */
export function withCommitCause<T> (written: Promise<T>): Promise<T> {
  return written.then(undefined, async (err: unknown) => {
    if (!isLmdbCommitFailure(err)) throw err
    const cause = (err as { commitError: Promise<unknown> }).commitError
    cause.then(undefined, () => {})
    let real: unknown = err
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      await Promise.race([cause, new Promise((resolve) => { timer = setTimeout(resolve, CAUSE_WAIT_MS, PENDING) })])
    } catch (e) {
      real = e
    } finally {
      clearTimeout(timer)
    }
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
