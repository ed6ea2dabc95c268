/**
 * When the host may `terminate()` a worker thread that has not become ready.
 *
 * A worker terminated while lmdb-js's native code runs — its module registration when
 * worker-entry's imports load it, or its environment open in `openStore` — can abort the
 * whole process: the addon's calls fail in the terminating environment, and node-addon-api
 * ends the process with `FATAL ERROR: Error::ThrowAsJavaScriptException napi_throw` on the
 * exception it cannot throw (the prebuilt addon is not built with
 * NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS). A scratch loop terminating workers at random
 * points of `import('lmdb')` and `open()` aborted 3 times in 262 tries, and a host whose
 * start failed, terminating its other worker, once in 150 starts.
 *
 * So every worker shares one Int32 word with the host, saying where its start is:
 *
 *   NATIVE    loading or opening LMDB (the word's initial value: worker-entry's static
 *             imports load the addon before any of its code runs) — never terminated
 *   SAFE      in JavaScript only (importing the agents module, which may never settle)
 *   STARTED   past its native start (a worker stuck later is terminated as before)
 *   CLAIMED   the host has claimed it for `terminate()`
 *
 * The worker moves SAFE → NATIVE by compare-exchange before it opens the store, and the
 * host SAFE → CLAIMED before it terminates: of the two, only one wins, and a worker that
 * finds itself claimed waits for its end without opening anything.
 */
export const INIT_NATIVE = 0
export const INIT_SAFE = 1
export const INIT_STARTED = 2
export const INIT_CLAIMED = 3

export function initWord (): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4))
}

/** Worker side: its native imports are loaded. */
export function leftNative (word: Int32Array): void {
  Atomics.store(word, 0, INIT_SAFE)
}

/**
 * Worker side, before it opens the store: from now on, not terminated. Claimed already by
 * the host: blocks until the termination ends the thread (Atomics.wait is interrupted by it).
 */
export function enterNative (word: Int32Array): void {
  while (Atomics.compareExchange(word, 0, INIT_SAFE, INIT_NATIVE) === INIT_CLAIMED) Atomics.wait(word, 0, INIT_CLAIMED)
}

/** Worker side: the store is open, the native start is over. */
export function startedNative (word: Int32Array): void {
  Atomics.store(word, 0, INIT_STARTED)
}

/** Host side: may the worker be terminated now (claimed if so)? False while it runs LMDB's native start. */
export function claimForTerminate (word: Int32Array): boolean {
  const was = Atomics.compareExchange(word, 0, INIT_SAFE, INIT_CLAIMED)
  return was !== INIT_NATIVE
}
