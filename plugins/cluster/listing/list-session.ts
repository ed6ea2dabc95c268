/**
 * One host's part of a cluster listing (`host.agents()`), in pages: the shards it was
 * asked for, in order, each listed whole from one read of the store (its ids in storage
 * order, then its agents resident here and not stored yet) — or named `missing` when this
 * host does not hold the shard's records now, so the asking host asks its owner.
 *
 * A page holds at most `maxBytes` of ids; a shard larger than that spans pages, and
 * `partial` says how many ids at the page's end belong to a shard not finished yet (the
 * asking host keeps them until it is: what it yields is whole shards only).
 */
import { hashId, shardOf } from '../../../native-free-core/placement/hash.ts'
import type { AgentQuery } from '../../../src/host/plugin.ts'
import { matchesQuery } from '../../../src/host/agent-query.ts'

export interface ListPage {
  readonly ids: string[]
  /** Ids at the end of `ids` of a shard that continues on the next page. */
  readonly partial: number
  /** Shards finished on this page, in order. */
  readonly complete: number[]
  /** Shards asked for that this host does not hold now. */
  readonly missing: number[]
  readonly done: boolean
}

export interface ListSource {
  /** Does this host hold every committed record of the shard now? */
  holds (shard: number): boolean
  /** Stored ids of the shard that start with `prefix`, in storage order. */
  shardIds (shard: number, prefix: string): Iterable<string>
}

export class ListSession {
  private readonly query: AgentQuery
  private readonly shards: readonly number[]
  private readonly source: ListSource
  /** Resident ids not stored yet, by shard (matching the query). */
  private readonly unsaved = new Map<number, string[]>()
  private next = 0
  private buffer: string[] = []
  private at = 0
  private bufferShard = -1
  /** When the asking host last asked (idle sessions are dropped). */
  touched = Date.now()

  constructor (query: AgentQuery, shards: readonly number[], source: ListSource, unsaved: readonly string[]) {
    this.query = query
    this.shards = shards
    this.source = source
    for (const id of unsaved) {
      if (!matchesQuery(query, id)) continue
      const s = shardOf(hashId(id))
      let list = this.unsaved.get(s)
      if (list === undefined) this.unsaved.set(s, list = [])
      list.push(id)
    }
  }

  page (maxBytes: number): ListPage {
    this.touched = Date.now()
    const ids: string[] = []
    const complete: number[] = []
    const missing: number[] = []
    let bytes = 0
    let steps = 0
    for (;;) {
      if (this.at < this.buffer.length) {
        let taken = 0
        while (this.at < this.buffer.length && bytes < maxBytes) {
          const id = this.buffer[this.at++]!
          ids.push(id)
          taken++
          bytes += id.length * 3 + 5
        }
        if (this.at < this.buffer.length) return { ids, partial: taken, complete, missing, done: false }
        complete.push(this.bufferShard)
        this.buffer = []
        this.at = 0
        continue
      }
      if (this.next >= this.shards.length) return { ids, partial: 0, complete, missing, done: true }
      // a page also ends after a bounded number of shards, however few ids they hold
      if (bytes >= maxBytes || ++steps > 512) return { ids, partial: 0, complete, missing, done: false }
      const s = this.shards[this.next++]!
      if (!this.source.holds(s)) {
        missing.push(s)
        continue
      }
      this.fill(s)
      if (this.buffer.length === 0) complete.push(s)
    }
  }

  private fill (shard: number): void {
    let stored = [...this.source.shardIds(shard, this.query.prefix)]
    if (this.query.type !== null) stored = stored.filter((id) => matchesQuery(this.query, id))
    const extra = this.unsaved.get(shard)
    if (extra !== undefined) {
      const seen = new Set(stored)
      for (const id of extra) if (!seen.has(id)) stored.push(id)
    }
    this.buffer = stored
    this.at = 0
    this.bufferShard = shard
  }
}
