/**
 * The cluster plugin: `createHost({ plugins: [cluster({...})] })` makes the host one of
 * many that serve one set of agents (docs/cluster.md). It wires four parts:
 *
 *   membership/   who is in the cluster and the shard map (etcd, or a static list)
 *   link/         one authenticated, batched WebSocket per pair of hosts
 *   router.ts     frames for shards served elsewhere: to their owner, or held
 *   handover.ts   planned moves: release, stream, adopt
 *
 * and answers `host.cluster` (members, ownerOf, settled), `host.stats().cluster`, the
 * cluster's Prometheus gauges, and the `cluster-change` event.
 *
 * Lifecycle: setup (before the workers start) claims the gateway and, with a static
 * list, marks the shards this host serves; start opens the links and joins (etcd: lease,
 * member key, the first map), then adopts its shards; close leaves — etcd: the host says
 * it is leaving, the leader moves every shard away, and it stops once it owns none.
 */
import { InvalidOptionError, TimeoutError, messageOf } from '../../native-free-core/errors.ts'
import { hashId, shardOf } from '../../native-free-core/placement/hash.ts'
import { idString, DEFAULT_QUOTA } from '../../native-free-core/agent/agent-id.ts'
import { isSettled, ownerOf as mapOwnerOf, shardsOf } from '../../native-free-core/placement/shard-map.ts'
import { isShardRanges } from '../../native-free-core/storage/shard-range.ts'
import type { ClusterMember, ClusterView } from '../../src/host/cluster-view.ts'
import type { Gateway } from '../../src/host/gateway.ts'
import type { HostPlugin, PluginHost } from '../../src/host/plugin.ts'
import { Handover } from './handover.ts'
import { LinkHub } from './link/index.ts'
import { EtcdMembership, StaticMembership } from './membership/index.ts'
import type { Member, Membership } from './membership/index.ts'
import { resolveClusterOptions } from './options.ts'
import type { ClusterOptions, ResolvedClusterOptions } from './options.ts'
import { ClusterRouter } from './router.ts'
import { ClusterWire } from './wire.ts'

/** Protocol of the cluster's frames: hosts of different protocols refuse each other's links. */
const PROTOCOL = 1

export class ClusterPlugin implements HostPlugin, ClusterView {
  readonly name = 'cluster'
  /** @internal */
  readonly routes = true
  /** @internal */
  readonly options: ResolvedClusterOptions
  private host!: PluginHost
  private gateway!: Gateway
  private links!: LinkHub
  private membership!: Membership
  private router!: ClusterRouter
  private handover!: Handover
  private wire!: ClusterWire
  private closing = false
  private settledWaiters: Array<() => void> = []
  private members_: readonly Member[] = []

  constructor (options: ClusterOptions) {
    this.options = resolveClusterOptions(options)
  }

  get id (): string {
    return this.options.id
  }

  get address (): string {
    const bound = this.links?.address
    return this.options.advertise ?? (bound === null || bound === undefined ? '' : `${bound.host}:${bound.port}`)
  }

  get epoch (): number {
    return this.membership?.map()?.epoch ?? 0
  }

  // ---- HostPlugin --------------------------------------------------------------

  /** @internal */
  async setup (host: PluginHost): Promise<void> {
    this.host = host
    host.expose('cluster', this)
    const store = host.store
    if (host.options.dataDir === undefined || !isShardRanges(store)) {
      throw new InvalidOptionError('dataDir', host.options.dataDir, 'is required with the cluster plugin: shards move between hosts with their LMDB records')
    }
    const o = this.options
    this.wire = new ClusterWire(host.options.maxMessageBytes + 1024)
    this.links = new LinkHub({
      id: o.id,
      secret: o.secret,
      listen: { host: o.listenHost, port: o.listenPort },
      hello: {
        protocol: PROTOCOL,
        agents: host.registry.fingerprint(),
        tickMs: host.options.tickMs,
        maxMessageBytes: host.options.maxMessageBytes
      },
      heartbeatMs: o.heartbeatMs,
      maxQueueBytes: o.maxLinkQueueBytes
    })
    this.router = new ClusterRouter(o.id, this.links, (peer, kind, frame) => {
      const decoded = this.wire.read(frame)
      if (decoded !== undefined) this.handover.onFrame(peer, kind, decoded.id, decoded.value)
    })
    this.gateway = host.gateway(this.router)
    this.router.attach(this.gateway)
    const bound = await this.links.listen()
    const address = o.advertise ?? `${bound.host === '0.0.0.0' ? '127.0.0.1' : bound.host}:${bound.port}`
    this.membership = o.membership.kind === 'static'
      ? new StaticMembership({ id: o.id, address, members: o.membership.entries })
      : new EtcdMembership({ id: o.id, address, ...withoutKind(o.membership) })
    this.handover = new Handover({
      self: o.id,
      gateway: this.gateway,
      router: this.router,
      store,
      membership: this.membership,
      wire: this.wire,
      writer: (peer) => this.links.writer(peer),
      changed: (gained, lost) => this.changed(gained, lost),
      warn: (message) => console.warn(`shoal cluster ${o.id}: ${message}`),
      settledMaybe: () => this.checkSettled()
    })
    this.links.on('batch', (peer, bytes, i32) => this.router.batch(peer, bytes, i32))
    this.links.on('down', (peer) => this.router.down(peer))
    this.membership.on('members', (members) => this.onMembers(members))
    this.membership.on('map', () => { void this.handover.reconcile() })
    this.membership.on('fenced', () => { void this.handover.fence() })
    this.membership.on('unfenced', () => this.handover.unfence())
    if (this.membership.kind === 'static') {
      // the map is known before the workers start: they start serving their shards at once
      await this.membership.start()
      const map = this.membership.map()!
      const mine = shardsOf(map, o.id)
      this.router.setMap(map)
      this.gateway.serveAtStart(mine)
      for (const s of mine) this.handover.served.add(s)
    }
  }

  /** @internal */
  async start (): Promise<void> {
    try {
      await this.membership.start()
    } catch (err) {
      await this.links.close()
      throw err
    }
    await this.handover.reconcile()
    if (this.membership.kind === 'etcd') await this.membership.setState('up')
    this.checkSettled()
  }

  /** @internal */
  async close (): Promise<void> {
    if (this.closing) return
    this.closing = true
    try {
      if (this.membership.kind === 'etcd' && !this.membership.fenced) {
        // leave: the leader moves every shard away; the host stops once it owns none and its reports are folded
        await this.membership.setState('leaving')
        await this.leave(this.host.options.callTimeoutMs)
      }
    } catch (err) {
      console.warn(`shoal cluster ${this.options.id}: leaving the cluster did not finish (${messageOf(err)}); its shards wait for it`)
    } finally {
      this.handover.close()
      await this.membership.close().catch(() => {})
      await this.links.close()
    }
  }

  /**
   * Wait until this host owns no shard — or until no other member could take them (the
   * whole cluster is stopping, or this was the last host): then its shards stay on its
   * disk and wait for it, as a dead host's would.
   */
  private async leave (timeoutMs: number): Promise<void> {
    const id = this.options.id
    const done = (): boolean => {
      const map = this.membership.map()
      if (map === undefined || shardsOf(map, id).length === 0) return true
      return !this.membership.members().some((m) => m.id !== id && m.state !== 'leaving')
    }
    const deadline = Date.now() + timeoutMs
    while (!done()) {
      if (Date.now() > deadline) throw new TimeoutError(`still owning ${shardsOf(this.membership.map()!, id).length} shard(s) after ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer)
          this.membership.off('map', wake)
          this.membership.off('members', wake)
          resolve()
        }
        const timer = setTimeout(wake, 250)
        this.membership.on('map', wake)
        this.membership.on('members', wake)
      })
    }
    await this.handover.reconcile()
  }

  /** @internal */
  stats (): Record<string, unknown> {
    const links = this.links.stats()
    const map = this.membership.map()
    return {
      id: this.options.id,
      address: this.address,
      epoch: map?.epoch ?? 0,
      members: this.members_.length,
      leader: this.membership.leader() ?? null,
      fenced: this.membership.fenced,
      shardsServed: this.handover.served.size,
      shardsMoving: this.handover.moving,
      movedOut: this.handover.movedOut,
      movedIn: this.handover.movedIn,
      movesCalledOff: this.handover.calledOff,
      forwarded: this.router.forwarded,
      held: this.router.held,
      unroutable: this.router.unroutable,
      droppedCasts: this.router.droppedCasts,
      callsInFlight: this.router.callsInFlight,
      refusedFrames: this.gateway.refused + this.wire.undecodable,
      links: {
        up: links.linksUp,
        framesIn: links.framesIn,
        framesOut: links.framesOut,
        bytesIn: links.bytesIn,
        bytesOut: links.bytesOut,
        queuedBytes: links.queuedBytes,
        droppedFrames: links.droppedFrames,
        refused: links.refused,
        peers: links.peers
      }
    }
  }

  /** @internal */
  metrics (): string {
    const links = this.links.stats()
    const h = this.handover
    const r = this.router
    let refused = 0
    for (const n of Object.values(links.refused)) refused += n ?? 0
    const lines: string[] = []
    const gauge = (name: string, help: string, value: number): void => {
      lines.push(`# HELP shoal_cluster_${name} ${help}`, `# TYPE shoal_cluster_${name} gauge`, `shoal_cluster_${name} ${value}`)
    }
    gauge('members', 'Members of the cluster this host sees.', this.members_.length)
    gauge('epoch', 'Epoch of the shard map this host has applied.', this.epoch)
    gauge('shards_served', 'Shards this host serves.', h.served.size)
    gauge('shards_moving', 'Shards moving into or out of this host.', h.moving)
    gauge('moved_out', 'Shards moved out of this host.', h.movedOut)
    gauge('moved_in', 'Shards moved into this host.', h.movedIn)
    gauge('forwarded', 'Frames sent to the host serving their shard.', r.forwarded)
    gauge('held', 'Frames held while their shard moved.', r.held)
    gauge('unroutable', 'Frames for a shard no reachable host served.', r.unroutable)
    gauge('links_up', 'Links to other hosts that are up.', links.linksUp)
    gauge('link_frames_in', 'Frames received over links.', links.framesIn)
    gauge('link_frames_out', 'Frames sent over links.', links.framesOut)
    gauge('link_bytes_in', 'Bytes received over links.', links.bytesIn)
    gauge('link_bytes_out', 'Bytes sent over links.', links.bytesOut)
    gauge('link_queued_bytes', 'Bytes waiting in link queues.', links.queuedBytes)
    gauge('refused_peers', 'Peers refused (authentication, garbage, oversize, duplicate id, mismatch).', refused)
    return lines.join('\n') + '\n'
  }

  // ---- ClusterView -------------------------------------------------------------

  members (): ClusterMember[] {
    return this.members_.map((m) => ({ id: m.id, address: m.address, state: m.state }))
  }

  ownerOf (agent: { readonly type: string, readonly key: string, readonly quota?: string }): string | null {
    const map = this.membership.map()
    if (map === undefined) return null
    const id = idString(agent.quota ?? DEFAULT_QUOTA, agent.type, agent.key)
    return mapOwnerOf(map, shardOf(hashId(id))) ?? null
  }

  settled (options: { readonly timeoutMs?: number } = {}): Promise<void> {
    if (this.isSettled()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? 60_000
      const timer = setTimeout(() => {
        this.settledWaiters = this.settledWaiters.filter((w) => w !== done)
        reject(new TimeoutError(`the cluster did not settle within ${timeoutMs} ms (epoch ${this.epoch}, ${this.handover.moving} shard(s) moving here)`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        resolve()
      }
      this.settledWaiters.push(done)
    })
  }

  private isSettled (): boolean {
    const map = this.membership?.map()
    if (map === undefined || !isSettled(map) || !this.handover.idle) return false
    for (const s of shardsOf(map, this.options.id)) if (!this.handover.served.has(s)) return false
    return true
  }

  private checkSettled (): void {
    if (this.settledWaiters.length === 0 || !this.isSettled()) return
    const waiters = this.settledWaiters
    this.settledWaiters = []
    for (const w of waiters) w()
  }

  // ---- events ------------------------------------------------------------------

  private onMembers (members: readonly Member[]): void {
    this.members_ = members
    const others = new Set<string>()
    for (const m of members) {
      if (m.id === this.options.id) continue
      others.add(m.id)
      this.links.connect(m.id, m.address)
    }
    for (const peer of this.links.peerIds()) if (!others.has(peer)) this.links.disconnect(peer)
    this.emitChange([], [])
  }

  private changed (gained: readonly number[], lost: readonly number[]): void {
    this.emitChange(gained, lost)
    this.checkSettled()
  }

  private emitChange (gained: readonly number[], lost: readonly number[]): void {
    this.host.emit('cluster-change', {
      epoch: this.epoch,
      members: this.members(),
      gained,
      lost,
      moving: this.handover.moving
    })
  }
}

function withoutKind<T extends { kind: string }> (o: T): Omit<T, 'kind'> {
  const { kind: _kind, ...rest } = o
  return rest
}

/** `cluster({...})`: the plugin that makes a host one of many (see ClusterOptions). */
export function cluster (options: ClusterOptions): ClusterPlugin {
  return new ClusterPlugin(options)
}
