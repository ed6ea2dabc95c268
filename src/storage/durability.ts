/**
 * Durability 'os' (src/storage/lmdb-store.ts, its header): the background flush's period
 * bounds, kept apart from the store so that option validation loads no native module.
 */

/** The background flush's default period, ms (like Redis's `appendfsync everysec`). */
export const defaultFlushIntervalMs = 1000

/** The longest background flush period, ms (one hour). */
export const kMaxFlushIntervalMs = 3_600_000
