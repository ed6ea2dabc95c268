/**
 * The resident agents of one shard runtime: id string → cell.
 *
 * A V8 `Map` holds at most 2^24 (16,777,216) entries, and a single worker may own
 * 20 million agents (`workers: 0`, or one worker owning most shards). The table is
 * therefore 16 maps chosen by the low bits of the placement hash, which every message
 * already carries: capacity 268 million, one extra array index per lookup.
 */

const kSubMaps = 16

export class AgentTable<V> {
  private readonly maps: Array<Map<string, V>> = Array.from({ length: kSubMaps }, () => new Map())

  get size (): number {
    let n = 0
    for (const m of this.maps) n += m.size
    return n
  }

  get (id: string, hash: number): V | undefined {
    return this.maps[hash & (kSubMaps - 1)]!.get(id)
  }

  set (id: string, hash: number, value: V): void {
    this.maps[hash & (kSubMaps - 1)]!.set(id, value)
  }

  delete (id: string, hash: number): boolean {
    return this.maps[hash & (kSubMaps - 1)]!.delete(id)
  }

  * values (): IterableIterator<V> {
    for (const m of this.maps) yield * m.values()
  }

  * keys (): IterableIterator<string> {
    for (const m of this.maps) yield * m.keys()
  }

  clear (): void {
    for (const m of this.maps) m.clear()
  }
}
