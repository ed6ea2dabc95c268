/** Append `item` to `key`'s list in `groups`, making the list on first use (shards grouped by move, by target, …). */
export function groupInto<K, T> (groups: Map<K, T[]>, key: K, item: T): void {
  const group = groups.get(key)
  if (group === undefined) groups.set(key, [item])
  else group.push(item)
}
