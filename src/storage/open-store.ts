/**
 * The store a thread's runtime commits to: LMDB in `dataDir` (every thread opens the
 * same environment), or, without `dataDir`, a MemoryStore of the thread's own — whose
 * agents live exactly as long as the host.
 */
import { StorageError, messageOf } from '../../native-free-core/errors.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import type { Store } from '../../native-free-core/storage/store.ts'
import { LmdbStore } from './lmdb-store.ts'
import type { Durability } from './lmdb-store.ts'
import { memoryStoreOptions } from './memory-store-options.ts'

export function openStore (dataDir: string | undefined, durability: Durability, flushIntervalMs?: number): Store {
  if (dataDir === undefined) return new MemoryStore(memoryStoreOptions)
  try {
    return new LmdbStore({ path: dataDir, durability, ...(flushIntervalMs === undefined ? {} : { flushIntervalMs }) })
  } catch (err) {
    if (err instanceof StorageError) throw err // says what is wrong already (another storage format)
    throw new StorageError(`could not open the LMDB environment in ${dataDir}: ${messageOf(err)}`, { dataDir })
  }
}
