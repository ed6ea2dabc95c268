/**
 * Byte ↔ string conversions for the in-memory store (see MemoryStore): Buffer's
 * latin1 codecs are native and lossless for bytes 0–255.
 */
import type { MemoryStoreOptions } from '../../native-free-core/storage/memory-store.ts'

const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string

export const memoryStoreOptions: MemoryStoreOptions = {
  bytesToString: (bytes) => latin1Slice.call(bytes, 0, bytes.length),
  stringToBytes: (s) => Buffer.from(s, 'latin1')
}
