/**
 * Static membership (development and benchmarks): a fixed list of hosts, the shard map
 * computed locally from the ring of their ids at epoch 1 — every host of the list
 * computes the same one. No etcd, no leader, no moves, no failover: a host that dies
 * takes its shards with it until it comes back.
 *
 * Same events as EtcdMembership: `start()` emits `members`, `leader` (undefined) and
 * `map` once; `setState` emits `members` (this host's state, seen locally only).
 */
import { EventEmitter } from 'node:events'
import { InvalidArgumentError } from '../../../native-free-core/errors.ts'
import { staticShardMap } from '../../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../../native-free-core/placement/shard-map.ts'
import type { InSyncRecord } from '../../../native-free-core/placement/in-sync.ts'
import type { Member, Membership, MembershipEvents, UntilOptions } from './membership.ts'
import { resolveStaticOptions } from './membership-options.ts'
import type { StaticEntry, StaticMembershipOptions } from './membership-options.ts'
import { untilMap } from './until-map.ts'

export class StaticMembership extends EventEmitter<MembershipEvents> implements Membership {
  readonly kind = 'static' as const
  readonly fenced = false
  readonly isLeader = false
  readonly #entries: readonly StaticEntry[]
  readonly #vnodes: number | undefined
  #self: Member
  #members: readonly Member[] = []
  #map: ShardMap | undefined

  constructor (options: StaticMembershipOptions) {
    super()
    const { entries, self, vnodes } = resolveStaticOptions(options)
    this.#entries = entries
    this.#vnodes = vnodes
    this.#self = { id: self.id, address: self.address, state: 'joining' }
  }

  get self (): Member { return this.#self }

  async start (): Promise<void> {
    if (this.#map !== undefined) return
    this.#self = { ...this.#self, state: 'up' }
    this.#map = staticShardMap(this.#entries.map((e) => e.id), this.#vnodes === undefined ? {} : { vnodes: this.#vnodes })
    this.#members = this.#list()
    this.emit('members', this.#members)
    this.emit('leader', undefined)
    this.emit('map', this.#map)
  }

  members (): readonly Member[] { return this.#members }
  map (): ShardMap | undefined { return this.#map }
  leader (): string | undefined { return undefined }

  async setState (state: 'up' | 'leaving'): Promise<void> {
    if (state !== 'up' && state !== 'leaving') throw new InvalidArgumentError(`setState: state must be "up" or "leaving" (got ${JSON.stringify(state)})`)
    this.#self = { ...this.#self, state }
    this.#members = this.#list()
    this.emit('members', this.#members)
  }

  async reportHandover (_shards: readonly number[], _from: string, _to: string, _epoch: number): Promise<void> {
    throw new InvalidArgumentError('static membership never moves shards: there is no handover to report')
  }

  async publishInSync (_record: InSyncRecord): Promise<void> {}

  async until (predicate: (map: ShardMap) => boolean, options: UntilOptions = {}): Promise<ShardMap> {
    return await untilMap(this, predicate, options)
  }

  async close (): Promise<void> {}

  #list (): Member[] {
    return this.#entries
      .map((e) => e.id === this.#self.id ? this.#self : { id: e.id, address: e.address, state: 'up' as const })
      .sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  }
}
