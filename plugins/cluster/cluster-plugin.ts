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
import { NONE, isSettled, ownerOf as mapOwnerOf, replicasOf, shardsOf } from '../../native-free-core/placement/shard-map.ts'
import { isShardRanges } from '../../native-free-core/storage/shard-range.ts'
import type { ShardRanges } from '../../native-free-core/storage/shard-range.ts'
import type { ClusterMember, ClusterView } from '../../src/host/cluster-view.ts'
import type { Store } from '../../native-free-core/storage/store.ts'
import type { Gateway } from '../../src/host/gateway.ts'
import type { HostPlugin, PluginHost } from '../../src/host/plugin.ts'
import { Handover } from './handover.ts'
import { LinkHub } from './link/index.ts'
import { EtcdMembership, StaticMembership } from './membership/index.ts'
import type { Member, Membership } from './membership/index.ts'
import { resolveClusterOptions } from './options.ts'
import type { ClusterOptions, ResolvedClusterOptions } from './options.ts'
import { ClusterRouter } from './router.ts'
import { CL_ANSWER, CL_ASK, CL_DELETED, CL_SENT_ACK, ClusterWire } from './wire.ts'
import { DurableAcks } from './durable-acks.ts'
import { ClusterTenancy } from './tenancy.ts'
import { PeerAsks } from './peer-asks.ts'
import { Replication } from './replication/index.ts'
import { splitJournal } from '../../native-free-core/storage/commit-journal.ts'
import type { ReplicaStore } from './replication/replica-copies.ts'
import type { ClusterPeers } from './peer-asks.ts'
import { DEFAULT_LEASE_TTL_S } from './membership/index.ts'
import { groupInto } from './group-into.ts'

/** Help texts of the tenancy figures (tenancy.ts) as metrics. */
const TENANCY_HELP: Readonly<Record<string, string>> = {
  quotaPeers: 'Other hosts whose quota counts this host adds to its own.',
  quotaCountFramesOut: 'Quota count publications sent.',
  quotaCountFramesIn: 'Quota count publications received.',
  listingsServed: 'host.agents() listings this host answered for other hosts.',
  listingPagesServed: 'Pages of listings this host answered for other hosts.'
}

/** Protocol of the cluster's frames: hosts of different protocols refuse each other's links. */
const PROTOCOL = 1

/** A leaving host closes its links once no batch arrived for this long (and no call is open). */
const LEAVE_QUIET_MS = 250

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
  private acks!: DurableAcks
  private store!: Store
  private tenancy!: ClusterTenancy
  /** Read-only questions to and from the other hosts (peer-asks.ts), shared as 'cluster-peers'. */
  private asks!: PeerAsks
  /** `replicas` > 1: commit journals to replicas, copies from owners (replication/). */
  private replication: Replication | null = null
  /** Per home thread: the barrier a replica's snapshot waits for (its commits queued so far have committed). */
  private readonly commitBarriers = new Map<number, Barrier>()
  private closing = false
  private shapeWarned = false
  /** etcd: the registration started in setup, awaited in start. */
  private joining: Promise<void> | null = null
  /** The membership started (a host that never joined has nothing to hand over when it closes). */
  private joined = false
  private settledWaiters: Array<() => void> = []
  /** etcd: copies the lease's serving deadline to the threads and the router (mesh.ts `servingUntil`). */
  private deadlineTimer: ReturnType<typeof setInterval> | null = null
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
    this.store = store
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
      // half the margin that keeps late durable-send copies out (router.ts, copyMaxAgeMs)
      clockWarnMs: o.forgetAfterMs / 4,
      maxQueueBytes: o.maxLinkQueueBytes
    })
    this.asks = new PeerAsks(this.wire, (peer) => this.links.writer(peer))
    // a copy older than half the time a receiver keeps its applied record: see router.ts
    this.router = new ClusterRouter(o.id, this.links, (peer, kind, frame) => {
      if (Replication.isBinary(kind)) {
        const payload = this.wire.payloadOf(frame)
        if (payload !== undefined && this.replication?.bytes(peer, kind, payload) === false) this.wire.undecodable++
        return
      }
      const decoded = this.wire.read(frame)
      if (decoded === undefined) return
      try {
        if (kind === CL_SENT_ACK || kind === CL_DELETED) this.acks.onFrame(peer, kind, decoded.value)
        else if (kind === CL_ASK || kind === CL_ANSWER) this.asks.onFrame(peer, kind, decoded.id, decoded.value)
        else if (this.replication?.frame(peer, kind, decoded.value) === true) return
        else if (!this.tenancy.frame(peer, kind, decoded.id, decoded.value)) this.handover.onFrame(peer, kind, decoded.id, decoded.value)
      } catch (err) {
        // a frame that decoded but not to the shape its kind has (a peer of another build, or
        // a bug): counted and logged once, never thrown into the link, which would end the host
        this.wire.undecodable++
        if (!this.shapeWarned) console.warn(`shoal cluster ${o.id}: a cluster frame of kind ${kind} from ${peer} has the wrong shape (${messageOf(err)}); counted in stats as undecodable, further ones only counted`)
        this.shapeWarned = true
      }
    }, o.forgetAfterMs / 2)
    if (o.replicas > 1) {
      if (!isReplicaStore(store)) throw new InvalidOptionError('cluster.replicas', o.replicas, 'needs the LMDB store (dataDir)')
      const replicaStore = store
      this.replication = new Replication({
        self: o.id,
        wire: this.wire,
        store: replicaStore,
        writer: (peer) => this.links.writer(peer),
        publish: (record) => this.membership.publishInSync(record),
        serves: (s) => this.handover.serves(s),
        holds: (s) => this.handover.keepsRange(s),
        ackTimeoutMs: o.replicaAckTimeoutMs,
        committed: (shard) => {
          // the shard's home thread (through its ring) and this thread's own store (outbox deletions)
          const home = this.gateway.homeOf(shard)
          const here = replicaStore.localCommits()
          if (home === 0) return here
          let barrier = this.commitBarriers.get(home)
          if (barrier === undefined) this.commitBarriers.set(home, barrier = new Barrier(() => this.gateway.commitsOf(home)))
          return Promise.all([here, barrier.after()]).then(() => {})
        },
        warn: (message) => console.warn(`shoal cluster ${o.id}: ${message}`)
      })
      // the main thread's own commits (outbox deletions, a workers: 0 runtime) are replicated too
      replicaStore.replicateWith(
        (journal) => this.replication!.owner.replicate(journal),
        (journal) => this.replication!.owner.restart(splitJournal(journal).map(([shard]) => shard))
      )
    }
    const replication = this.replication
    this.gateway = host.gateway({
      route: (frame) => this.router.route(frame),
      applied: (acks) => this.acks.applied(acks),
      ...(replication !== null
        ? {
            replicate: (journal: Uint8Array) => replication.owner.replicate(journal),
            lost: (shards: readonly number[] | ((shard: number) => boolean)) => replication.owner.restart(shards),
            landed: (which: (shard: number) => boolean) => replication.owner.whenLanded(which)
          }
        : {})
    })
    this.router.attach(this.gateway)
    const bound = await this.links.listen()
    // for the plugins beside this one (the dashboard): the link server's app, to serve from
    // the same port, and read-only asks to the other members — the only two ways in
    host.provide('uws', { app: this.links.app, host: bound.host, port: bound.port })
    host.provide('cluster-peers', this.peers())
    const address = o.advertise ?? `${bound.host === '0.0.0.0' ? '127.0.0.1' : bound.host}:${bound.port}`
    this.membership = o.membership.kind === 'static'
      ? new StaticMembership({ id: o.id, address, members: o.membership.entries })
      : new EtcdMembership({ id: o.id, address, replicas: o.replicas, ...withoutKind(o.membership) })
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
      settledMaybe: () => this.checkSettled(),
      deletionsSettled: () => this.acks.settled(),
      ...(replication !== null
        ? {
            promote: (shards: readonly number[]) => replication.replica.promote(shards),
            beforeImport: async (shard: number) => {
              replication.replica.forget(shard)
              await replication.replica.drain()
            },
            isCopy: (shard: number) => (store as unknown as ReplicaStore).isReplicaRange(shard)
          }
        : {})
    })
    this.acks = new DurableAcks({
      self: o.id,
      store,
      gateway: this.gateway,
      wire: this.wire,
      ownerOf: (shard) => this.router.ownerOf(shard),
      serves: (shard) => this.handover.serves(shard),
      writer: (peer) => this.links.writer(peer),
      graceMs: o.forgetAfterMs
    })
    this.tenancy = new ClusterTenancy({
      self: o.id,
      host,
      store,
      links: this.links,
      membership: this.membership,
      wire: this.wire,
      holds: (s) => this.handover.holds(s),
      quotaSyncMs: o.quotaSyncMs,
      warn: (message) => console.warn(`shoal cluster ${o.id}: ${message}`)
    })
    this.links.on('batch', (peer, bytes, i32) => this.router.batch(peer, bytes, i32))
    this.links.on('up', (peer) => {
      this.handover.up(peer)
      this.tenancy.up(peer)
      this.replication?.up(peer)
    })
    this.links.on('down', (peer) => {
      this.handover.down(peer)
      this.replication?.down(peer)
      this.router.down(peer)
      this.tenancy.down(peer)
      this.asks.down(peer)
    })
    this.membership.on('members', (members) => {
      this.onMembers(members)
      this.tenancy.changed(members, this.membership.map())
    })
    this.membership.on('map', (map) => {
      // writes of shards no longer ours fail before the handover releases them (their commits wait on replicas)
      this.replication?.setMap(map, (s) => this.handover.serves(s))
      if (this.joined || this.membership.kind === 'static') void this.handover.reconcile() // etcd: start() adopts the first map, after the quota limits
      this.tenancy.changed(this.membership.members(), map)
    })
    this.membership.on('fenced', () => {
      this.router.fenced = true
      void this.handover.fence()
    })
    // the lease expired: the handover reports under it are gone, they must be made again
    this.membership.on('lost', () => this.handover.leaseLost())
    this.membership.on('unfenced', () => {
      // the renewal that unfenced also moved the serving deadline: copy it now, not on the
      // next tick, or the threads answer "lapsed" for up to a tick after the router serves again
      this.copyServingDeadline()
      this.router.fenced = false
      this.handover.unfence()
    })
    if (this.membership.kind === 'static') {
      // the map is known before the workers start: they start serving their shards at once
      await this.membership.start()
      const map = this.membership.map()!
      const mine = shardsOf(map, o.id)
      this.router.setMap(map)
      this.gateway.serveAtStart(mine)
      for (const s of mine) this.handover.served.add(s)
    } else {
      // joining starts now, not after the workers: the start-up deadline (a part of the lease
      // TTL) is counted from here. The first map may come before the workers run; adopting its
      // shards waits for them (the steps queue on their rings).
      this.joining = this.membership.start()
      this.joining.catch(() => {}) // awaited in start()
    }
  }

  /** @internal */
  async start (): Promise<void> {
    await (this.joining ?? this.membership.start())
    this.joined = true
    if (this.membership instanceof EtcdMembership) {
      // renewals go out every TTL/6 and the deadline is TTL/2 after one: a few copies per renewal keep it ahead
      const copy = (): void => this.copyServingDeadline()
      copy()
      this.deadlineTimer = setInterval(copy, Math.max(20, Math.min(250, (this.options.membership.kind === 'etcd' ? this.options.membership.leaseTtlS ?? DEFAULT_LEASE_TTL_S : 10) * 1000 / 24)))
      this.deadlineTimer.unref()
    }
    await this.tenancy.start() // the cluster's quota limits, before this host adopts its shards
    await this.handover.reconcile()
    this.acks.start()
    if (this.membership.kind === 'etcd') await this.membership.setState('up')
    this.checkSettled()
  }

  /** The lease's serving deadline, to the router and to every thread (they refuse turns past it). */
  private copyServingDeadline (): void {
    const membership = this.membership
    if (!(membership instanceof EtcdMembership) || !this.joined) return
    const until = membership.servingUntil
    this.router.servingUntil = until
    this.gateway.serveUntil(until)
  }

  /** @internal */
  async close (): Promise<void> {
    if (this.closing) return
    this.closing = true
    try {
      if (this.membership.kind === 'etcd' && this.joined && !this.membership.fenced) {
        // leave: the leader moves every shard away; the host stops once it owns none and its reports are folded
        await this.membership.setState('leaving')
        await this.leave(this.host.options.callTimeoutMs)
        await this.drainAfterLeave(this.host.options.callTimeoutMs)
      }
    } catch (err) {
      console.warn(`shoal cluster ${this.options.id}: leaving the cluster did not finish (${messageOf(err)}); its shards wait for it`)
    } finally {
      if (this.deadlineTimer !== null) clearInterval(this.deadlineTimer)
      this.handover.close()
      this.replication?.close()
      this.acks.close()
      await this.tenancy.close()
      this.asks.close()
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

  /**
   * After the last shard moved away, peers may still have calls to this host in flight (sent
   * before they saw the new map; this host forwards them to the new owners) and unanswered
   * calls here wait for their replies. Closing the links now would fail those calls with
   * "link dropped": wait until no proxied call is open and nothing arrived for a quiet
   * spell, bounded by the call timeout (a graceful leave must not hang a shutdown).
   */
  private async drainAfterLeave (callTimeoutMs: number): Promise<void> {
    const bound = Math.min(10_000, callTimeoutMs > 0 ? callTimeoutMs : 10_000)
    const deadline = Date.now() + bound
    let seen = this.router.received
    let quietSince = Date.now()
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      if (this.router.received !== seen) {
        seen = this.router.received
        quietSince = Date.now()
        continue
      }
      if (this.gateway.proxiedCalls === 0 && Date.now() - quietSince >= LEAVE_QUIET_MS) return
    }
    console.warn(`shoal cluster ${this.options.id}: leaving: ${this.gateway.proxiedCalls} call(s) from peers still open and frames still coming after ${bound} ms; closing the links (those callers retry)`)
  }

  /** @internal */
  /**
   * Durable sends this host still holds a record of: outbox records not acknowledged yet
   * (this host sent them), applied records not forgotten yet (it received them). Counts
   * the store's records: for tests and diagnostics, not for every stats tick.
   */
  durableBacklog (): { outbox: number, applied: number, outboxWhere: string[] } {
    let outbox = 0
    let applied = 0
    // where the records lie, for a checker that finds some left: the sender shard and what this host is to it
    const where = new Map<number, number>()
    for (const r of this.store.outbox()) {
      outbox++
      where.set(r.senderShard, (where.get(r.senderShard) ?? 0) + 1)
    }
    for (const _ of this.store.applied()) applied++
    const map = this.membership.map()
    const outboxWhere: string[] = []
    for (const [shard, n] of where) {
      if (outboxWhere.length === 8) break
      const owner = map === undefined ? '?' : (mapOwnerOf(map, shard) ?? 'none')
      const role = this.handover.serves(shard) ? 'served' : this.handover.holds(shard) ? 'leaving' : (this.replication?.replica.copyOf(shard) ?? (isReplicaStore(this.store) && this.store.isReplicaRange(shard) ? 'a replica range with no copy' : 'a range of its own, not served'))
      const listed = map !== undefined && replicasOf(map, shard).includes(this.options.id) ? ', a listed replica' : ''
      outboxWhere.push(`${this.options.id}: ${n} in shard ${shard} (${role}${listed}; map owner ${owner} at epoch ${map?.shardEpoch[shard] ?? '?'})`)
    }
    return { outbox, applied, outboxWhere }
  }


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
      staleRangesDropped: this.handover.staleDropped,
      flushAsks: this.handover.flushAsks,
      forwarded: this.router.forwarded,
      held: this.router.held,
      releasedArrivals: this.router.releasedArrivals,
      unroutable: this.router.unroutable,
      droppedCasts: this.router.droppedCasts,
      callsInFlight: this.router.callsInFlight,
      refusedFrames: this.gateway.refused + this.wire.undecodable,
      durable: { acked: this.acks.acked, deleted: this.acks.deleted, forgotten: this.acks.forgotten, staleCopies: this.router.staleCopies },
      ...(this.replication === null ? {} : { replication: this.replicationStats() }),
      ...this.tenancy.stats(),
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
    gauge('moves_called_off', 'Shard moves out of this host called off (tried again later).', h.calledOff)
    gauge('dropped_casts', 'Casts dropped because no reachable host served their shard.', r.droppedCasts)
    gauge('stale_send_copies', 'Copies of durable sends dropped as older than half of forgetAfterMs (their senders send fresh ones).', r.staleCopies)
    gauge('calls_in_flight', 'Calls waiting for a reply from another host.', r.callsInFlight)
    gauge('refused_frames', 'Frames from other hosts refused (not messages for agents, or undecodable).', this.gateway.refused + this.wire.undecodable)
    gauge('link_dropped_frames', 'Frames dropped from link queues when a link went down.', links.droppedFrames)
    gauge('fenced', '1 while this host may not serve (its lease was not renewed in time).', this.membership.fenced ? 1 : 0)
    gauge('leader', '1 while this host is the leader.', this.membership.isLeader ? 1 : 0)
    const perPeer = (name: string, help: string, value: (p: (typeof links.peers)[number]) => number): void => {
      lines.push(`# HELP shoal_cluster_${name} ${help}`, `# TYPE shoal_cluster_${name} gauge`)
      for (const p of links.peers) lines.push(`shoal_cluster_${name}{peer=${JSON.stringify(p.id)}} ${value(p)}`)
    }
    if (links.peers.length !== 0) {
      perPeer('peer_up', '1 while the link to the peer is up.', (p) => p.state === 'up' ? 1 : 0)
      perPeer('peer_queued_bytes', 'Bytes waiting in the link to the peer.', (p) => p.queuedBytes)
    }
    for (const [name, value] of Object.entries(this.tenancy.stats())) {
      const metric = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
      gauge(metric, TENANCY_HELP[name] ?? name, value)
    }
    return lines.join('\n') + '\n'
  }

  private replicationStats (): Record<string, number> {
    const { owner, replica } = this.replication!
    return {
      replicas: this.options.replicas,
      shardsWithReplicasInSync: owner.inSyncCount(),
      shardsFailoverReady: owner.failoverReady(),
      copiesInSync: replica.copiesInSync,
      segmentsOut: owner.segmentsOut,
      bytesOut: owner.bytesOut,
      snapshotsOut: owner.snapshotsOut,
      fellOut: owner.fellOut,
      streamsRestarted: owner.restarts,
      inSyncPublishFailures: owner.publishFailures,
      segmentsIn: replica.segmentsIn,
      bytesIn: replica.bytesIn,
      snapshotsIn: replica.snapshotsIn,
      snapshotBytesIn: replica.snapshotBytesIn,
      refusedSegments: replica.refusedSegments,
      replicaApplies: replica.applies
    }
  }

  /** What 'cluster-peers' shares (peer-asks.ts). */
  private peers (): ClusterPeers {
    const membership = (): Membership => this.membership
    const o = this.options
    return {
      self: o.id,
      view: this,
      map: () => membership().map(),
      leader: () => membership().leader(),
      lease: () => {
        const m = membership()
        if (!(m instanceof EtcdMembership) || o.membership.kind !== 'etcd') return null
        return { id: m.leaseId ?? null, ttlS: o.membership.leaseTtlS ?? DEFAULT_LEASE_TTL_S, fenced: m.fenced }
      },
      ask: (peer, topic, value, options) => this.asks.ask(peer, topic, value, options?.timeoutMs),
      answer: (topic, handler) => { this.asks.answer(topic, handler) }
    }
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
        reject(new TimeoutError(`the cluster did not settle within ${timeoutMs} ms (${this.describe()})`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        resolve()
      }
      this.settledWaiters.push(done)
    })
  }

  /**
   * @internal This host's view of what keeps the cluster from settling: its map epoch,
   * leader and lease, its moves (in and out, with what the map says of them), its reconcile
   * step, its router's holds. An unsettled cluster's message, and what a checker asks every
   * host for when the cluster does not settle (src/cli/chaos/checker.ts).
   */
  describe (): string {
    const map = this.membership?.map()
    const m = this.membership
    const lease = m instanceof EtcdMembership ? `, lease ${m.leaseId ?? 'none'}${m.isLeader ? ', leader' : ''}` : ''
    return `as ${this.options.id} sees it: epoch ${this.epoch}, leader ${m?.leader() ?? 'none'}${lease}, ${this.settledWaiters.length} settle waiter(s); ${this.handover.moving} shard(s) moving here: ${this.handover.describeMoving()}; ${this.handover.describeOutgoing(map)}; ${this.router.describeHolds()}; ${this.replication?.owner.describeWaiting() ?? 'no replication'}; ${this.describeUnsettled()}`
  }

  /** Why the map or this host is not settled, for a timeout's message. */
  private describeUnsettled (): string {
    const map = this.membership.map()
    if (map === undefined) return 'no map yet'
    // planned moves grouped by old owner, target and the epoch they were planned at
    const groups = new Map<string, number[]>()
    let moves = 0
    let unowned = 0
    for (let s = 0; s < map.owner.length; s++) {
      if (map.owner[s] === NONE) unowned++
      else if (map.target[s] !== NONE) {
        moves++
        const key = `${map.hosts[map.owner[s]!]!}→${map.hosts[map.target[s]!]!} planned at ${map.targetEpoch[s]!}`
        groupInto(groups, key, s)
      }
    }
    const planned = [...groups].map(([key, shards]) => `${shards.length} ${key} (e.g. ${shards.slice(0, 3).join(', ')})`)
    const unserved = shardsOf(map, this.options.id).filter((s) => !this.handover.served.has(s))
    return `map: ${moves} move(s) planned${planned.length === 0 ? '' : ` [${planned.slice(0, 4).join('; ')}]`}, ${unowned} unowned; ${unserved.length} of this host's not served${unserved.length === 0 ? '' : ` [${unserved.slice(0, 3).join(', ')}]`}; ${this.membership.fenced ? 'fenced' : 'not fenced'}; members ${this.members_.map((m) => `${m.id}:${m.state}`).join(' ')}`
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
    const map = this.membership.map()
    if (map !== undefined) this.replication?.setMap(map, (s) => this.handover.serves(s))
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

type ReplicatingStore = ReplicaStore & {
  replicateWith (replicate: (journal: Uint8Array) => Promise<void>, lost: (journal: Uint8Array) => void): void
  localCommits (): Promise<void>
}

/**
 * A barrier that many may ask for at once: one on its way at a time; who asks while one is
 * on its way (asked before them, so not covering them) gets the next, started once it is done.
 */
class Barrier {
  private readonly run: () => Promise<void>
  private running: Promise<void> | null = null
  private next: Promise<void> | null = null

  constructor (run: () => Promise<void>) {
    this.run = run
  }

  after (): Promise<void> {
    if (this.running === null) return this.start()
    if (this.next === null) {
      const go = (): Promise<void> => {
        this.next = null
        return this.start()
      }
      this.next = this.running.then(go, go)
    }
    return this.next
  }

  private start (): Promise<void> {
    const p: Promise<void> = this.run().finally(() => { if (this.running === p) this.running = null })
    this.running = p
    return p
  }
}

function isReplicaStore (store: unknown): store is ReplicatingStore & ShardRanges {
  return typeof (store as ReplicatingStore).applyReplicated === 'function' && typeof (store as ReplicatingStore).replicateWith === 'function'
}

function withoutKind<T extends { kind: string }> (o: T): Omit<T, 'kind'> {
  const { kind: _kind, ...rest } = o
  return rest
}

/** `cluster({...})`: the plugin that makes a host one of many (see ClusterOptions). */
export function cluster (options: ClusterOptions): ClusterPlugin {
  return new ClusterPlugin(options)
}
