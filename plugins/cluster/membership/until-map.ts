/** `membership.until(predicate)`: the first map, current one included, that satisfies it. */
import { AbortedError } from '../../../native-free-core/errors.ts'
import type { ShardMap } from '../../../native-free-core/placement/shard-map.ts'
import type { Membership, UntilOptions } from './membership.ts'

export async function untilMap (membership: Membership, predicate: (map: ShardMap) => boolean, options: UntilOptions): Promise<ShardMap> {
  const current = membership.map()
  if (current !== undefined && predicate(current)) return current
  const { signal } = options
  if (signal?.aborted === true) throw new AbortedError('waiting for the shard map was aborted', undefined, { cause: signal.reason })
  return await new Promise<ShardMap>((resolve, reject) => {
    const onMap = (map: ShardMap): void => {
      let ok: boolean
      try { ok = predicate(map) } catch (e) {
        cleanup()
        reject(e)
        return
      }
      if (!ok) return
      cleanup()
      resolve(map)
    }
    const onAbort = (): void => {
      cleanup()
      reject(new AbortedError('waiting for the shard map was aborted', undefined, { cause: signal?.reason }))
    }
    const cleanup = (): void => {
      membership.off('map', onMap)
      signal?.removeEventListener('abort', onAbort)
    }
    membership.on('map', onMap)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
