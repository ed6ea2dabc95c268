/**
 * The storage format a store writes, and its identity.
 *
 * Format 2 (this Shoal) keys every record that belongs to an agent by the agent's
 * placement shard first (shard-range.ts), so that a shard is one key range per database.
 * Format 1 — every data directory written before formats were recorded — keyed states by
 * id alone; its records cannot be found under format 2's keys, so a store refuses to open
 * it rather than serve an empty-looking host over it.
 *
 * `storeId`: 64 random bits, made once when a store's environment is created and kept
 * with it. Durable sends are named by (origin storeId, key) — unique however records move
 * between hosts, since no two environments share an id (2^-64 per pair).
 */
import { StorageError } from '../errors.ts'

export const STORE_FORMAT = 2

/** What a data directory with data but no recorded format was written by. */
export const UNVERSIONED_FORMAT = 1

/** A fresh store id: 16 lowercase hex digits from the platform's CSPRNG (Web Crypto, in Node and browsers). */
export function newStoreId (): string {
  const words = new Uint32Array(2)
  globalThis.crypto.getRandomValues(words)
  return hex8(words[0]!) + hex8(words[1]!)
}

export function isStoreId (s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-f]{16}$/.test(s)
}

/** The 8 bytes of a store id, big-endian (as in outbox and applied keys). */
export function storeIdBytes (id: string, into: Uint8Array = new Uint8Array(8), at = 0): Uint8Array {
  for (let i = 0; i < 8; i++) into[at + i] = parseInt(id.slice(i * 2, i * 2 + 2), 16)
  return into
}

export function storeIdOf (bytes: Uint8Array, at = 0): string {
  let s = ''
  for (let i = 0; i < 8; i++) s += (bytes[at + i]! < 16 ? '0' : '') + bytes[at + i]!.toString(16)
  return s
}

/** The error for a data directory of another format: names the directory, what it holds and what this Shoal reads. */
export function formatMismatch (dataDir: string, found: unknown): StorageError {
  const what = found === UNVERSIONED_FORMAT
    ? `format ${UNVERSIONED_FORMAT} (written before Shoal recorded formats)`
    : `format ${typeof found === 'number' ? found : JSON.stringify(found)}`
  return new StorageError(
    `the data directory ${dataDir} holds Shoal storage ${what}; this Shoal reads format ${STORE_FORMAT} only. ` +
    'Use a new dataDir, or open this one with the Shoal version that wrote it',
    { dataDir, format: found, expected: STORE_FORMAT })
}

function hex8 (n: number): string {
  return n.toString(16).padStart(8, '0')
}
