/**
 * The cluster view, as one host assembles it: the members and the shard map as this host
 * has them (the map is the same on every host at an epoch), and every other host's own
 * figures, asked for over the cluster's links (plugins/cluster/peer-asks.ts, topic
 * `dashboard.sample`: each host answers with its latest HostSample). So the page opened on
 * any host shows the whole cluster, through the links the cluster already authenticated,
 * with no other port to open and no HTTP between hosts.
 *
 * Asks go out once per interval while a page is open, at most one in flight per host; the
 * view is built from the answers that came in by then (a host's figures are one interval
 * old at most, and say when they were taken). A host that does not answer (down, no
 * dashboard plugin, link not up) is shown with the reason.
 */
import { NONE } from '../../native-free-core/placement/shard-map.ts'
import { messageOf } from '../../native-free-core/errors.ts'
import type { ClusterPeers } from '../cluster/peer-asks.ts'
import type { HostSample } from './figures.ts'

export const SAMPLE_TOPIC = 'dashboard.sample'

export interface HostEntry {
  readonly id: string
  readonly address: string
  readonly state: string
  /** The host's latest figures, or null before its first answer. */
  readonly sample: HostSample | null
  /** Why the last ask failed, or null. */
  readonly error: string | null
}

export interface ClusterMessage {
  readonly t: 'cluster'
  readonly self: string
  readonly epoch: number
  readonly leader: string | null
  readonly hosts: readonly HostEntry[]
  /** Owner of every shard (an index into `mapHosts`, -1 for none), sent when the map's epoch changed for the page. */
  readonly map?: { readonly epoch: number, readonly hosts: readonly string[], readonly owner: readonly number[], readonly moves: ReadonlyArray<readonly [shard: number, from: number, to: number]> }
}

interface Known {
  sample: HostSample | null
  error: string | null
  asking: boolean
}

export class ClusterFigures {
  private readonly peers: ClusterPeers
  private readonly timeoutMs: number
  private readonly known = new Map<string, Known>()
  private mapCache: { epoch: number, value: NonNullable<ClusterMessage['map']> } | null = null

  constructor (peers: ClusterPeers, timeoutMs: number) {
    this.peers = peers
    this.timeoutMs = timeoutMs
  }

  /** Ask every other member for its latest figures (one ask in flight per host). */
  poll (): void {
    const members = this.peers.view.members()
    const ids = new Set(members.map((m) => m.id))
    for (const id of this.known.keys()) if (!ids.has(id)) this.known.delete(id)
    for (const m of members) {
      if (m.id === this.peers.self) continue
      let k = this.known.get(m.id)
      if (k === undefined) this.known.set(m.id, k = { sample: null, error: null, asking: false })
      if (k.asking) continue
      k.asking = true
      const entry = k
      this.peers.ask(m.id, SAMPLE_TOPIC, null, { timeoutMs: this.timeoutMs }).then((answer) => {
        entry.asking = false
        entry.sample = answer as HostSample
        entry.error = null
      }, (err: unknown) => {
        entry.asking = false
        entry.error = messageOf(err)
      })
    }
  }

  /** The view now, with this host's own latest sample; `withMap` adds the shard map. */
  message (self: HostSample | null, withMap: boolean): ClusterMessage {
    const view = this.peers.view
    const hosts: HostEntry[] = view.members().map((m) => {
      if (m.id === this.peers.self) return { id: m.id, address: m.address, state: m.state, sample: self, error: null }
      const k = this.known.get(m.id)
      return { id: m.id, address: m.address, state: m.state, sample: k?.sample ?? null, error: k?.error ?? null }
    })
    const msg: ClusterMessage = { t: 'cluster', self: this.peers.self, epoch: view.epoch, leader: this.peers.leader() ?? null, hosts }
    if (!withMap) return msg
    const map = this.mapNow()
    return map === null ? msg : { ...msg, map }
  }

  /** The map's epoch as this host has it (0 before the first map). */
  get mapEpoch (): number {
    return this.peers.map()?.epoch ?? 0
  }

  private mapNow (): NonNullable<ClusterMessage['map']> | null {
    const map = this.peers.map()
    if (map === undefined) return null
    if (this.mapCache?.epoch === map.epoch) return this.mapCache.value
    const owner: number[] = new Array(map.owner.length)
    const moves: Array<readonly [number, number, number]> = []
    for (let s = 0; s < map.owner.length; s++) {
      const o = map.owner[s]!
      owner[s] = o === NONE ? -1 : o
      const t = map.target[s]!
      if (t !== NONE) moves.push([s, owner[s]!, t])
    }
    const value = { epoch: map.epoch, hosts: [...map.hosts], owner, moves }
    this.mapCache = { epoch: map.epoch, value }
    return value
  }
}
