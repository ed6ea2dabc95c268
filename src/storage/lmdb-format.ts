/**
 * The storage format of an LMDB environment, checked when a store opens it
 * (native-free-core/storage/store-format.ts): `meta` holds `format` and `storeId`.
 *
 *   no database at all       a new environment: written as format 2 with a new storeId
 *   meta.format === 2        this Shoal's format: its storeId is read
 *   meta.format, another     StorageError naming the directory and both formats
 *   data but no meta.format  format 1 (written before formats were recorded): StorageError
 *
 * Every thread of a host opens the environment; whichever comes first initialises it,
 * in a write transaction that looks again, so two first openers cannot both write.
 */
import type { Database, RootDatabase } from 'lmdb'
import { StorageError } from '../../native-free-core/errors.ts'
import { STORE_FORMAT, UNVERSIONED_FORMAT, formatMismatch, isStoreId, newStoreId } from '../../native-free-core/storage/store-format.ts'

/** Check (or initialise) the format of `env`; returns its storeId. */
export function openFormat (env: RootDatabase, meta: Database<unknown, string>, dataDir: string): string {
  let format = meta.get('format')
  if (format === undefined) {
    format = env.transactionSync(() => {
      const now = meta.get('format')
      if (now !== undefined) return now
      // the root database lists the named databases: any but meta means data of an older Shoal
      let named = false
      for (const name of env.getKeys({})) if (name !== 'meta') named = true
      if (named || meta.getKeysCount() !== 0) return UNVERSIONED_FORMAT
      meta.putSync('format', STORE_FORMAT)
      meta.putSync('storeId', newStoreId())
      return STORE_FORMAT
    })
  }
  if (format !== STORE_FORMAT) throw formatMismatch(dataDir, format)
  const storeId = meta.get('storeId')
  if (!isStoreId(storeId)) {
    throw new StorageError(`the data directory ${dataDir} has no valid store id (meta.storeId is ${JSON.stringify(storeId)})`, { dataDir })
  }
  return storeId
}
