/**
 * Membership on etcd (docs/cluster.md): each host holds
 * a lease and a member key; one host is leader (a lease-bound key created only if
 * absent) and is the only writer of the shard map; every host watches the prefix and
 * emits `members`, `map`, `leader`. Key layout and transactions: cluster-keys.ts; lease
 * and self-fencing: lease-keeper.ts; the planning itself: native-free-core's shard-map.
 *
 * The leader plans on every change it sees (the first map only once `minMembers` are in) (members, handover reports, gaining the
 * leadership) and on a timer (TTL/2), one write at a time: `nextMap(map, members,
 * reports)` folds up to 126 reports and plans new moves in one map write at epoch + 1,
 * deleting the folded reports in the same transaction, which also checks the map's mod
 * revision and the leader's term. A write that fails re-reads everything and plans again.
 *
 * Replicas and failover: the leader plans with `replicas` (R) and the in-sync records of
 * all hosts (`${prefix}/insync/${id}`, watched like the rest), so a shard whose owner's
 * member key is gone (lease expired) goes to a member that owner's record names in sync
 * at the shard's epoch, at epoch + 1 (shard-map.ts). A changed record re-plans only
 * while some host in the map is not a member (only then can it change the map). A
 * record that does not decode counts as absent: no failover for that owner.
 *
 * Start-up: grant a lease (retrying until 80% of the TTL, then ClusterUnavailableError),
 * register the member key as `joining` (if another lease holds this id, wait for it to
 * expire — a crashed previous incarnation — up to its TTL + 1 s, then ClusterIdInUseError),
 * read the prefix, watch it from the next revision, campaign.
 */
import { EventEmitter } from 'node:events'
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3'
import {
  ClusterFencedError, ClusterIdInUseError, ClusterUnavailableError, DecodeError, HostClosedError, InvalidArgumentError, ShoalError, messageOf
} from '../../../native-free-core/errors.ts'
import { SHARDS } from '../../../native-free-core/placement/hash.ts'
import { decodeShardMap, nextMap } from '../../../native-free-core/placement/shard-map.ts'
import type { CompletedMove, ShardMap } from '../../../native-free-core/placement/shard-map.ts'
import { decodeInSync, inSyncLookup } from '../../../native-free-core/placement/in-sync.ts'
import type { InSyncRecord } from '../../../native-free-core/placement/in-sync.ts'
import {
  ClusterKeys, MAX_TXN_OPS, campaign, decodeHandover, decodeMember, putHandovers, putInSync, readAll, register, updateMember, writeMap
} from './cluster-keys.ts'
import type { HandoverRecord } from './cluster-keys.ts'
import { createEtcdClient, sleep } from './etcd-client.ts'
import { LeaseKeeper } from './lease-keeper.ts'
import type { Member, Membership, MembershipEvents, UntilOptions } from './membership.ts'
import { resolveEtcdOptions } from './membership-options.ts'
import type { EtcdMembershipOptions, ResolvedEtcdOptions } from './membership-options.ts'
import { untilMap } from './until-map.ts'

/** Reports folded per map write: etcd's 128 compares minus the map's and the leader's. */
const MAX_FOLDED = MAX_TXN_OPS - 2
const RETRY_MS = 100

interface Changes { members: boolean, leader: boolean, map: boolean, handovers: boolean, inSync: boolean }

export class EtcdMembership extends EventEmitter<MembershipEvents> implements Membership {
  readonly kind = 'etcd' as const
  readonly #o: ResolvedEtcdOptions
  readonly #keys: ClusterKeys
  readonly #ttlMs: number
  #client: Etcd3 | undefined
  #keeper: LeaseKeeper | undefined
  #watcher: Watcher | undefined
  #self: Member
  #members = new Map<string, Member>()
  #memberList: readonly Member[] = []
  #leader: string | undefined
  /** Create revision of the leader key as last seen (one term of leadership). */
  #leaderRevision = 0
  /** This host's term (the leader key's create revision when it won), or 0. */
  #term = 0
  #map: ShardMap | undefined
  #mapRevision = 0
  #mapBroken = false
  #handovers = new Map<number, HandoverRecord>()
  /** Every host's in-sync record, by owner id (the leader's failover candidates). */
  #inSync = new Map<string, InSyncRecord>()
  readonly #inSyncLookup = inSyncLookup(this.#inSync)
  /**
   * Last revision applied per key — a put's mod revision, or a delete's revision (kept
   * as a tombstone) — so a re-read never rolls a newer watch event back.
   */
  #revisions = new Map<string, number>()
  #snapshotRevision = 0
  #registered = false
  #starting: Promise<void> | undefined
  #closed = false
  #leading = false
  #dirty = false
  #tick: NodeJS.Timeout | undefined
  #rejoining = false

  constructor (options: EtcdMembershipOptions) {
    super()
    this.#o = resolveEtcdOptions(options)
    this.#keys = new ClusterKeys(this.#o.prefix)
    this.#ttlMs = this.#o.leaseTtlS * 1000
    this.#self = { id: this.#o.id, address: this.#o.address, state: 'joining' }
  }

  get self (): Member { return this.#self }
  get fenced (): boolean { return this.#keeper?.fenced ?? true }
  get isLeader (): boolean { return this.#term > 0 && this.#term === this.#leaderRevision && !this.fenced }
  /** This host's leadership term (the leader key's create revision), 0 when not leader. */
  get leaderRevision (): number { return this.isLeader ? this.#term : 0 }
  /** The map key's mod revision as last seen (0: none). */
  get mapRevision (): number { return this.#mapRevision }
  /** The current lease id, for diagnostics. */
  get leaseId (): string | undefined { return this.#keeper?.id }
  /**
   * Wall ms (Date.now) until which this host's threads may serve from memory, 0 before the
   * first grant: three quarters of the TTL after the send time of the last renewal etcd
   * confirmed. The lease keeper fences the host at half the TTL (its timer, on this
   * thread); this later deadline, checked by every thread on its own, is the guard for a
   * process that stood still (SIGSTOP, a VM pause) and wakes up before its timers run —
   * still a quarter TTL before the lease can expire, and no host takes the shards before it does.
   */
  get servingUntil (): number {
    const last = this.#keeper?.lastRenewal ?? 0
    return last === 0 ? 0 : last + this.#o.leaseTtlS * 750
  }
  /** The etcd client, once started (the cluster's quota limits share it). */
  get client (): Etcd3 | undefined { return this.#client }
  /** The etcd layout this membership uses. */
  get keys (): ClusterKeys { return this.#keys }

  /** The in-sync records as last seen, by owner id (read-only view). */
  inSyncRecords (): ReadonlyMap<string, InSyncRecord> { return this.#inSync }

  members (): readonly Member[] { return this.#memberList }
  map (): ShardMap | undefined { return this.#map }
  leader (): string | undefined { return this.#leader }

  async start (): Promise<void> {
    this.#starting ??= this.#start()
    return await this.#starting
  }

  async #start (): Promise<void> {
    if (this.#closed) throw new HostClosedError('membership is closed')
    const client = this.#client = createEtcdClient({
      hosts: this.#o.hosts,
      callTimeoutMs: Math.min(2_000, this.#ttlMs / 2),
      watchBackoffMaxMs: Math.min(1_000, this.#ttlMs / 4)
    })
    const keeper = this.#keeper = new LeaseKeeper(client, this.#o.leaseTtlS)
    keeper.on('fenced', () => { if (!this.#closed) this.emit('fenced') })
    keeper.on('unfenced', () => {
      if (this.#closed) return
      this.emit('unfenced')
      this.#kick()
    })
    keeper.on('lost', (e) => { void this.#onLost(e) })
    try {
      // etcd must answer within 80% of the TTL
      const deadline = Date.now() + this.#ttlMs * 0.8
      let lastError: unknown
      for (;;) {
        try {
          await withTimeout(keeper.grant(), deadline - Date.now())
          break
        } catch (e) {
          lastError = e
          if (this.#closed) throw new HostClosedError('membership closed while starting')
          if (Date.now() + RETRY_MS >= deadline) throw this.#unavailable(lastError)
          await sleep(RETRY_MS)
        }
      }
      await this.#registerOrWait()
      await this.#resync()
      await this.#watch()
      await this.#campaign()
    } catch (e) {
      await this.#teardown()
      if (e instanceof ShoalError) throw e
      throw this.#unavailable(e)
    }
    this.#tick = setInterval(() => this.#maintain(), Math.max(100, this.#ttlMs / 2))
  }

  #unavailable (cause: unknown): ClusterUnavailableError {
    return new ClusterUnavailableError(
      `cannot reach etcd at ${this.#o.hosts.join(', ')} within ${this.#ttlMs * 0.8} ms (80% of leaseTtlS ${this.#o.leaseTtlS}): ${messageOf(cause)}`,
      { endpoints: [...this.#o.hosts], cause: messageOf(cause) },
      { cause }
    )
  }

  /** Put the member key; a previous incarnation's key (another lease) must expire first. */
  async #registerOrWait (): Promise<void> {
    const client = this.#client!
    const lease = this.#keeper!.id!
    let waitUntil = 0
    for (;;) {
      const r = await register(client, this.#keys, this.#self, lease)
      if (r.ok) break
      if (waitUntil === 0) {
        let ttl = this.#o.leaseTtlS
        try {
          const info = await client.leaseClient.leaseTimeToLive({ ID: r.holder! })
          ttl = Math.max(0, Number(info.grantedTTL))
        } catch {}
        waitUntil = Date.now() + ttl * 1000 + 1_000
      }
      if (Date.now() > waitUntil || this.#closed) {
        throw new ClusterIdInUseError(`another live host holds cluster id ${JSON.stringify(this.#self.id)} (lease ${r.holder!} renewed past its TTL)`, { id: this.#self.id })
      }
      await sleep(200)
    }
    this.#registered = true
  }

  async #watch (): Promise<void> {
    const client = this.#client!
    const watcher = await withTimeout(
      client.watch().prefix(this.#keys.root).startRevision(String(this.#snapshotRevision + 1)).create(),
      Math.min(2_000, this.#ttlMs / 2)
    )
    if (this.#closed) {
      await watcher.cancel().catch(() => {})
      return
    }
    this.#watcher = watcher
    let disconnected = false
    watcher.on('data', (res: IWatchResponse) => this.#onWatch(res))
    watcher.on('disconnected', () => { disconnected = true })
    watcher.on('connected', () => {
      if (!disconnected) return
      disconnected = false
      void this.#resync().catch(() => {})
    })
    watcher.on('error', () => {
      // cancelled by etcd (compaction): read everything and watch again
      if (this.#closed) return
      this.#watcher = undefined
      void (async () => {
        while (!this.#closed) {
          try {
            await this.#resync()
            await this.#watch()
            return
          } catch { await sleep(RETRY_MS) }
        }
      })()
    })
  }

  /** Read the whole prefix and make the local view match it. */
  async #resync (): Promise<void> {
    const snap = await readAll(this.#client!, this.#keys)
    if (this.#closed) return
    this.#snapshotRevision = Math.max(this.#snapshotRevision, snap.revision)
    const changes: Changes = { members: false, leader: false, map: false, handovers: false, inSync: false }
    const present = new Set<string>()
    for (const kv of snap.kvs) {
      const k = kv.key.toString('utf8')
      present.add(k)
      this.#applyPut(k, kv, changes)
    }
    for (const k of [...this.#revisions.keys()]) {
      if (!present.has(k) && this.#revisions.get(k)! < snap.revision) this.#applyDelete(k, snap.revision, changes)
    }
    this.#emitChanges(changes)
  }

  #onWatch (res: IWatchResponse): void {
    if (this.#closed) return
    const changes: Changes = { members: false, leader: false, map: false, handovers: false, inSync: false }
    for (const ev of res.events) {
      const k = ev.kv.key.toString('utf8')
      if (ev.type === 'Put') this.#applyPut(k, ev.kv, changes)
      else this.#applyDelete(k, Number(ev.kv.mod_revision), changes)
    }
    this.#emitChanges(changes)
  }

  #applyPut (k: string, kv: IKeyValue, changes: Changes): void {
    const kind = this.#keys.classify(k)
    if (kind === undefined) return
    const rev = Number(kv.mod_revision)
    if ((this.#revisions.get(k) ?? 0) >= rev) return
    this.#revisions.set(k, rev)
    switch (kind.kind) {
      case 'member': {
        const m = decodeMember(kind.id, kv.value)
        if (m === undefined) {
          changes.members = this.#members.delete(kind.id) || changes.members
        } else {
          this.#members.set(m.id, m)
          changes.members = true
        }
        break
      }
      case 'leader': {
        const leader = kv.value.toString('utf8')
        const revision = Number(kv.create_revision)
        if (leader !== this.#leader || revision !== this.#leaderRevision) changes.leader = true
        this.#leader = leader
        this.#leaderRevision = revision
        break
      }
      case 'map': {
        if (rev <= this.#mapRevision) break
        this.#mapRevision = rev
        let map: ShardMap
        try {
          map = decodeShardMap(kv.value)
        } catch (e) {
          this.#mapBroken = true
          this.emit('map-error', e instanceof DecodeError ? e : new DecodeError(messageOf(e)))
          break
        }
        this.#mapBroken = false
        if (this.#map === undefined || map.epoch !== this.#map.epoch) changes.map = true
        this.#map = map
        break
      }
      case 'insync': {
        let record: InSyncRecord | undefined
        try { record = decodeInSync(kv.value) } catch {}
        if (record === undefined || record.owner !== kind.id) this.#inSync.delete(kind.id)
        else this.#inSync.set(kind.id, record)
        changes.inSync = true
        break
      }
      case 'handover': {
        const h = decodeHandover(kind.shard, kv)
        // an unreadable report is kept as a no-op record so the leader deletes it
        this.#handovers.set(kind.shard, h ?? { shard: kind.shard, from: '', to: '', epoch: 0, modRevision: rev })
        changes.handovers = true
        break
      }
    }
  }

  #applyDelete (k: string, revision: number, changes: Changes): void {
    const kind = this.#keys.classify(k)
    if (kind === undefined) return
    if ((this.#revisions.get(k) ?? 0) >= revision) return
    this.#revisions.set(k, revision)
    switch (kind.kind) {
      case 'member':
        changes.members = this.#members.delete(kind.id) || changes.members
        break
      case 'leader':
        if (this.#leader !== undefined) changes.leader = true
        this.#leader = undefined
        this.#leaderRevision = 0
        break
      case 'map':
        // only an operator deletes the map. Keep the last one: planning from nothing would
        // reassign every shard while their owners still serve them
        this.#mapBroken = true
        this.emit('map-error', new DecodeError(`the shard map key ${k} was deleted; the leader stops planning until a map is written`, { key: k }))
        break
      case 'handover':
        this.#handovers.delete(kind.shard)
        break
      case 'insync':
        changes.inSync = this.#inSync.delete(kind.id) || changes.inSync
        break
    }
  }

  #emitChanges (c: Changes): void {
    if (c.members) {
      this.#memberList = [...this.#members.values()].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
      this.emit('members', this.#memberList)
    }
    if (c.leader) {
      if (this.#term !== 0 && this.#term !== this.#leaderRevision) this.#term = 0
      this.emit('leader', this.#leader)
      if (this.#leader === undefined) void this.#campaign().catch(() => {})
    }
    if (c.map && this.#map !== undefined) this.emit('map', this.#map)
    if (c.members || c.handovers || c.leader || (c.inSync && this.#ownerGone())) this.#kick()
  }

  /** Some host the map names is not a member: a failover may be due. */
  #ownerGone (): boolean {
    const map = this.#map
    return map !== undefined && map.hosts.some((h) => !this.#members.has(h))
  }

  async #campaign (): Promise<void> {
    const lease = this.#keeper?.id
    if (this.#closed || !this.#registered || lease === undefined || this.#keeper!.fenced || this.#leader !== undefined) return
    const r = await campaign(this.#client!, this.#keys, this.#self.id, lease)
    if (this.#closed) return
    const changed = r.leader !== this.#leader || r.revision !== this.#leaderRevision
    if (r.leader !== undefined && r.revision >= this.#leaderRevision) {
      this.#leader = r.leader
      this.#leaderRevision = r.revision
      this.#revisions.set(this.#keys.leader, Math.max(this.#revisions.get(this.#keys.leader) ?? 0, r.won ? r.revision : 0))
    }
    if (r.won) this.#term = r.revision
    if (changed) this.emit('leader', this.#leader)
    if (r.won) this.#kick()
  }

  /** Run the leader's planning, one write at a time; again if something changed meanwhile. */
  #kick (): void {
    if (this.#closed || !this.isLeader) return
    this.#dirty = true
    if (this.#leading) return
    this.#leading = true
    void (async () => {
      try {
        while (this.#dirty && !this.#closed && this.isLeader) {
          this.#dirty = false
          try {
            await this.#leadOnce()
          } catch {
            // etcd unreachable or slow: the maintenance tick tries again
          }
        }
      } finally {
        this.#leading = false
      }
    })()
  }

  async #leadOnce (): Promise<void> {
    if (this.#mapBroken) return
    if (this.#map === undefined && this.#memberList.filter((m) => m.state !== 'leaving').length < this.#o.minMembers) return
    const folded = [...this.#handovers.values()].slice(0, MAX_FOLDED)
    const done: CompletedMove[] = folded.filter((h) => h.from !== '').map((h) => ({ shard: h.shard, from: h.from, to: h.to, epoch: h.epoch }))
    const next = nextMap(this.#map ?? null, this.#memberList, done, {
      maxMovesPerHost: this.#o.maxMovesPerHost,
      replicas: this.#o.replicas,
      inSync: this.#inSyncLookup,
      ...(this.#o.vnodes === undefined ? {} : { vnodes: this.#o.vnodes })
    })
    if (next === null && folded.length === 0) return
    const term = this.#term
    const r = await writeMap(this.#client!, this.#keys, { map: next, mapRevision: this.#mapRevision, leaderRevision: term, folded })
    if (this.#closed) return
    if (!r.ok) {
      // someone moved: another leader, or a report changed; read and plan again
      await this.#resync()
      await sleep(RETRY_MS)
      this.#dirty = true
      return
    }
    const changes: Changes = { members: false, leader: false, map: false, handovers: false, inSync: false }
    for (const h of folded) {
      if (this.#handovers.get(h.shard)?.modRevision === h.modRevision) this.#handovers.delete(h.shard)
      this.#revisions.set(this.#keys.handover(h.shard), r.revision)
    }
    if (next !== null && r.revision > this.#mapRevision) {
      this.#map = next
      this.#mapRevision = r.revision
      this.#revisions.set(this.#keys.map, r.revision)
      changes.map = true
    }
    this.#emitChanges(changes)
    if (this.#handovers.size > 0) this.#dirty = true
  }

  #maintain (): void {
    if (this.#closed || this.fenced || !this.#registered) return
    if (this.#leader === undefined) void this.#campaign().catch(() => {})
    else this.#kick()
  }

  async #onLost (error: Error): Promise<void> {
    if (this.#closed) return
    this.#term = 0
    this.#registered = false
    this.emit('lost', error)
    if (this.#rejoining) return
    this.#rejoining = true
    try {
      while (!this.#closed) {
        try {
          await this.#keeper!.grant()
          await this.#registerOrWait()
          await this.#resync()
          await this.#campaign()
          if (!this.#closed) this.#keeper!.unfence()
          return
        } catch {
          await sleep(RETRY_MS * 5)
        }
      }
    } finally {
      this.#rejoining = false
    }
  }

  async setState (state: 'up' | 'leaving'): Promise<void> {
    if (state !== 'up' && state !== 'leaving') throw new InvalidArgumentError(`setState: state must be "up" or "leaving" (got ${JSON.stringify(state)})`)
    const lease = this.#requireStarted('setState')
    const next: Member = { ...this.#self, state }
    if (!await this.#retrying('setState', async () => await updateMember(this.#client!, this.#keys, next, lease))) {
      throw new ClusterUnavailableError(`setState: this host's member key is not under its lease ${lease} (lost; registering again)`, { id: this.#self.id })
    }
    this.#self = next
  }

  async reportHandover (shards: readonly number[], from: string, to: string, epoch: number): Promise<void> {
    const lease = this.#requireStarted('reportHandover')
    for (const s of shards) {
      if (!Number.isInteger(s) || s < 0 || s >= SHARDS) throw new InvalidArgumentError(`reportHandover: a shard is an integer from 0 to ${SHARDS - 1} (got ${String(s)})`, { shard: s })
    }
    if (typeof from !== 'string' || from === '' || typeof to !== 'string' || to === '' || from === to) {
      throw new InvalidArgumentError(`reportHandover: from and to must be two different host ids (got ${JSON.stringify(from)}, ${JSON.stringify(to)})`)
    }
    if (!Number.isInteger(epoch) || epoch < 1) throw new InvalidArgumentError(`reportHandover: epoch must be a map epoch ≥ 1 (got ${String(epoch)})`)
    await this.#retrying('reportHandover', async () => { await putHandovers(this.#client!, this.#keys, shards, from, to, epoch, lease) })
  }

  async publishInSync (record: InSyncRecord): Promise<void> {
    if (record === null || typeof record !== 'object' || record.owner !== this.#self.id) {
      throw new InvalidArgumentError(`publishInSync: the record must be this host's own (owner ${JSON.stringify(this.#self.id)}, got ${JSON.stringify((record as InSyncRecord | null)?.owner)})`)
    }
    if (this.#keeper === undefined) this.#requireStarted('publishInSync')
    if (this.#closed) throw new HostClosedError('publishInSync: membership is closed')
    const lease = this.#keeper?.id
    if (!this.#registered || lease === undefined) throw this.#fenced('publishInSync', lease)
    if (!await this.#retrying('publishInSync', async () => await putInSync(this.#client!, this.#keys, record, lease))) {
      throw this.#fenced('publishInSync', lease)
    }
  }

  #fenced (what: string, lease: string | undefined): ClusterFencedError {
    return new ClusterFencedError(
      `${what}: this host's member key is not under its live lease${lease === undefined ? '' : ` ${lease}`} (expired or revoked; other hosts may be taking its shards over)`,
      { id: this.#self.id, lease: lease ?? null }
    )
  }

  /** etcd calls made for the caller: retried for up to one TTL, then ClusterUnavailableError. */
  async #retrying<T> (what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#ttlMs
    for (;;) {
      try {
        return await fn()
      } catch (e) {
        if (this.#closed) throw new HostClosedError(`${what}: membership is closed`)
        if (Date.now() + RETRY_MS >= deadline) {
          throw new ClusterUnavailableError(`${what}: etcd did not answer within ${this.#ttlMs} ms: ${messageOf(e)}`, { id: this.#self.id, cause: messageOf(e) }, { cause: e })
        }
        await sleep(RETRY_MS)
      }
    }
  }

  async until (predicate: (map: ShardMap) => boolean, options: UntilOptions = {}): Promise<ShardMap> {
    return await untilMap(this, predicate, options)
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#starting?.catch(() => {})
    await this.#teardown()
  }

  async #teardown (): Promise<void> {
    clearInterval(this.#tick)
    this.#tick = undefined
    const watcher = this.#watcher
    this.#watcher = undefined
    if (watcher !== undefined) await withTimeout(watcher.cancel(), 1_000).catch(() => {})
    // revoking deletes the member key, the leader key (if held) and our reports at once
    await this.#keeper?.revoke()
    this.#term = 0
    this.#client?.close()
  }

  #requireStarted (what: string): string {
    const lease = this.#keeper?.id
    if (this.#closed) throw new HostClosedError(`${what}: membership is closed`)
    if (!this.#registered || lease === undefined) throw new ClusterUnavailableError(`${what}: not registered in etcd (not started, or the lease was lost)`, { id: this.#self.id })
    return lease
  }
}

async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(ms)} ms`)), Math.max(0, ms)) })
    ])
  } finally {
    clearTimeout(timer)
  }
}
