/**
 * The host: what `createHost` returns. It owns the shared memory, the worker threads
 * and the main thread's ThreadLoop, and wires the parts that do the work:
 *
 *   routing.ts        ref → frame on the owner's ring; replies matched to pending calls
 *   workers.ts        worker threads: start, restart on death, quota broadcast, stop
 *   listing.ts        host.agents(): the store's ids and the threads' unsaved residents
 *   offload-relay.ts  a worker's ctx.offload run on the main thread's pool
 *   shutdown.ts       host.close(): drain, commit, stop
 *
 * The host keeps the process alive (its workers do) until `close()`, like a server.
 */
import { EventEmitter } from 'node:events'
import { parseId } from '../../native-free-core/agent/agent-id.ts'
import type { AgentId } from '../../native-free-core/agent/agent-id.ts'
import type { AgentDefinition } from '../../native-free-core/agent/define-agent.ts'
import { MSG_FOLLOW, MSG_UNFOLLOW } from '../../native-free-core/agent/envelope.ts'
import { InvalidArgumentError, errorFromWire } from '../../native-free-core/errors.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import type { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { Store } from '../../native-free-core/storage/store.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import { isQuotaRecords } from '../../native-free-core/tenancy/quota-store.ts'
import { QuotaGate } from '../../native-free-core/tenancy/quota-gate.ts'
import type { AgentRef } from './agent-ref.ts'
import { stateCodec } from '../thread/codec.ts'
import { loadRegistry } from './load-agents.ts'
import { openStore } from '../storage/open-store.ts'
import { LmdbStore } from '../storage/lmdb-store.ts'
import { OutboxRedelivery } from '../storage/outbox-redelivery.ts'
import { LocalAcks } from '../storage/local-acks.ts'
import { createMesh } from '../thread/mesh.ts'
import type { Mesh } from '../thread/mesh.ts'
import { HostClock } from '../time/host-clock.ts'
import { resolveOptions } from './options.ts'
import type { HostOptions, ResolvedHostOptions } from './options.ts'
import { PendingCalls } from './pending-calls.ts'
import { ThreadLoop } from '../thread/thread-loop.ts'
import { TestClock } from '../time/test-clock.ts'
import { OffloadPool } from '../offload/offload-pool.ts'
import { hostStats, readGcStats, readWorkerStats } from '../observe/host-stats.ts'
import type { HostStats } from '../observe/host-stats.ts'
import { hostMetrics } from '../observe/metrics.ts'
import { HostQuotas } from '../tenancy/host-quotas.ts'
import type { Quotas } from '../tenancy/host-quotas.ts'
import { FRAME_STATE, nodeUtf8 } from '../thread/frame-codec.ts'
import { Follows } from './follow.ts'
import type { HostEvents } from './host-events.ts'
import { HostLifecycle } from './lifecycle.ts'
import { AgentListing } from './listing.ts'
import type { AgentFilter } from './listing.ts'
import { OffloadRelay } from './offload-relay.ts'
import { Router } from './routing.ts'
import { Gateway } from './gateway.ts'
import type { HostPlugin, PluginHost } from './plugin.ts'
import { notClustered } from './cluster-view.ts'
import type { ClusterView } from './cluster-view.ts'
import type { RefOptions } from './routing.ts'
import { shutDown } from './shutdown.ts'
import { WorkerSupervisor } from './workers.ts'
import { inspectOnThread } from '../thread/inspect-agent.ts'
import type { AgentInspection } from '../thread/inspect-agent.ts'
import { checkKey, checkName, DEFAULT_QUOTA, idString, printable } from '../../native-free-core/agent/agent-id.ts'
import { hashId, shardOf } from '../../native-free-core/placement/hash.ts'
import { SHARD_LOCAL } from '../../native-free-core/placement/shard-state.ts'
import { HostClosedError, WorkerCrashedError } from '../../native-free-core/errors.ts'

export type { AgentErrorEvent, HostEvents, WorkerRestartEvent } from './host-events.ts'
export type { AgentFilter } from './listing.ts'
export type { AgentInspection, AgentReminderInfo } from '../thread/inspect-agent.ts'
export type { RefOptions } from './routing.ts'

export class Host extends EventEmitter<HostEvents> {
  /** @internal */
  readonly options: ResolvedHostOptions
  /** @internal */
  readonly registry: AgentRegistry
  private readonly mesh: Mesh
  private readonly loop: ThreadLoop
  private readonly pending: PendingCalls
  private readonly life = new HostLifecycle()
  private readonly workers: WorkerSupervisor
  private readonly router: Router
  private readonly listing: AgentListing
  private readonly relay: OffloadRelay
  private readonly agentErrorListeners: Int32Array
  /** The main thread's own store: the runtime's with `workers: 0`; else, with `dataDir`, a handle on LMDB for listing and quotas. */
  private readonly localStore: Store | null = null
  private readonly redelivery: OutboxRedelivery | null = null
  /** Dedup mode on one host (a test hook): the main thread's runtime acknowledges its own applied sends. */
  private readonly acks: LocalAcks | null = null
  private readonly clock: HostClock
  private readonly pool: OffloadPool | null
  private readonly follows: Follows
  /** `host.quotas`: create, change, read and delete quotas. */
  readonly quotas: Quotas
  private readonly hostQuotas: HostQuotas
  private closing: Promise<void> | null = null
  /** The cluster's gateway, when a router plugin claimed it (plugin.ts). */
  private gateway: Gateway | null = null
  private readonly shared = new Map<string, unknown>()
  /** What this host knows of its cluster (the cluster plugin fills it in). */
  readonly cluster: ClusterView = notClustered

  /** @internal Use `createHost`. */
  constructor (options: ResolvedHostOptions, registry: AgentRegistry, pool: OffloadPool | null = null) {
    super()
    this.options = options
    this.registry = registry
    this.pending = new PendingCalls(options.callTimeoutMs)
    this.mesh = createMesh(options.workers, options.ringBytes, options.plugins.some((p) => p.routes === true))
    this.agentErrorListeners = new Int32Array(new SharedArrayBuffer(4))
    this.pool = pool
    if (options.workers === 0 || options.dataDir !== undefined) this.localStore = openStore(options.dataDir, options.durability, options.flushIntervalMs)
    // one host (no plugin routes shards here: no range arrives from another host): an
    // activation in a shard that held no state when the host started, and has had none
    // written since, need not read LMDB — found now, before any worker can write
    const stateless = this.localStore instanceof LmdbStore && !options.plugins.some((p) => p.routes === true)
      ? this.localStore.findStatelessShards()
      : null
    // quota limits and counts persist through the store (QuotaRecords); with no store of
    // its own the main thread keeps the limits in memory, for the host's lifetime
    const records = isQuotaRecords(this.localStore) ? this.localStore : new MemoryStore()
    this.hostQuotas = new HostQuotas(this.mesh.threads, records, (u) => this.workers.broadcastQuota(u))
    this.quotas = this.hostQuotas
    // a shard range imported or dropped (a cluster's move) takes its agents' counts along
    records.countsMoved = (change) => this.hostQuotas.moved(change)
    const store = this.localStore
    const hostQuotas = this.hostQuotas
    this.loop = new ThreadLoop({
      index: 0,
      mesh: this.mesh,
      maxMessageBytes: options.maxMessageBytes,
      onReply: (callId, ok, value) => this.pending.settle(callId, ok, value),
      onAgentError: (id, method, error) => this.emitAgentError(id, method, error),
      onTask: (peer, taskId, name, input) => this.relay.run(peer, taskId, name, input),
      onResult: (kind, id, ok, value) => { if (kind === FRAME_STATE) this.follows.deliver(id, ok, value) },
      onForeign: (frame, from) => this.gateway?.foreign(frame, from),
      onRawResult: (kind, frame) => this.gateway?.proxied(kind, frame) ?? false,
      onControl: (_from, token, msg) => {
        if (msg.op === 'applied') this.gateway?.applied(msg.acks)
        else if (msg.op === 'replicate') this.gateway?.replicate(_from, token, msg.journal)
        else if (msg.op === 'commit-failed') this.gateway?.commitFailed(msg.shards)
        else this.gateway?.answered(token, msg)
      },
      onApplied: (id, hash, send) => {
        if (this.acks !== null) this.acks.applied(id, hash, send)
        else this.gateway?.applied([[hash, id, send.senderShard, send.origin, send.key]])
      },
      // workers: 0 — the main thread owns every agent
      ...(options.workers === 0
        ? {
            runtime: (loop: ThreadLoop) => new ShardRuntime({
              registry,
              store,
              codec: stateCodec,
              output: loop,
              decodeUtf8: nodeUtf8,
              maxMessageBytes: options.maxMessageBytes,
              quotas: new QuotaGate(hostQuotas.directory, hostQuotas.counters, 0),
              outbox: options.outbox,
              ...(options.testClock !== null ? { clock: TestClock.reader(options.testClock) } : {}),
              ...(pool !== null ? { offload: (name: string, input: unknown) => pool.run(name, input) } : {}),
              ...(this.mesh.shardStates !== null ? { shardStates: new Uint8Array(this.mesh.shardStates) } : {})
            })
          }
        : {})
    })
    this.workers = new WorkerSupervisor({
      options,
      registry,
      mesh: this.mesh,
      loop: this.loop,
      pending: this.pending,
      quotas: this.hostQuotas,
      life: this.life,
      agentErrorListeners: this.agentErrorListeners.buffer as SharedArrayBuffer,
      offload: pool !== null,
      replicates: () => this.gateway?.replicates === true,
      stateless,
      follows: () => this.follows,
      agentError: (id, method, error) => this.emitAgentError(id, method, error),
      restarted: (event) => {
        this.gateway?.restarted(event.thread)
        this.emit('worker-restart', event)
      }
    })
    this.clock = new HostClock(this.mesh, options.clock, options.tickMs, {
      agentThreads: options.workers === 0 ? [0] : Array.from({ length: options.workers }, (_, i) => i + 1),
      alive: (t) => this.workers.alive(t),
      mainQuiet: () => this.loop.quiet
    })
    this.router = new Router({
      registry,
      loop: this.loop,
      pending: this.pending,
      quotas: this.hostQuotas,
      life: this.life,
      epochOf: (t) => this.workers.epochOf(t),
      follows: () => this.follows,
      gateway: () => this.gateway
    })
    this.follows = new Follows({
      subscribe: (sub) => this.router.sendFollow(sub, MSG_FOLLOW),
      unsubscribe: (sub) => { if (!this.life.closed) this.router.sendFollow(sub, MSG_UNFOLLOW) }
    })
    this.listing = new AgentListing({ registry, store: this.localStore, loop: this.loop, workers: this.workers, life: this.life })
    this.relay = new OffloadRelay(pool, this.loop, this.workers, this.life)
    const runtime = this.loop.runtime
    if (runtime !== null && store!.durable) {
      // in a cluster (workers: 0): only the sends of senders served here, and none not released yet (as in worker-entry.ts)
      const states = this.mesh.shardStates === null ? null : new Uint8Array(this.mesh.shardStates)
      const loop = this.loop
      this.redelivery = new OutboxRedelivery(runtime, store!, () => true, () => loop.wake(),
        states === null ? undefined : (shard) => states[shard] === SHARD_LOCAL,
        loop.unreleasedSends === null ? undefined : { unreleased: loop.unreleasedSends, pastServingDeadline: () => loop.pastServingDeadline() })
    }
    if (runtime !== null && store!.durable && options.outbox === 'dedup' && this.mesh.shardStates === null) this.acks = new LocalAcks(runtime, store!, () => this.loop.wake())
    // workers report agent errors only while someone listens (see AgentErrorReporter)
    const untyped = this as EventEmitter
    untyped.on('newListener', (event: string | symbol) => { if (event === 'agent-error') Atomics.add(this.agentErrorListeners, 0, 1) })
    untyped.on('removeListener', (event: string | symbol) => { if (event === 'agent-error') Atomics.sub(this.agentErrorListeners, 0, 1) })
  }

  /** @internal createHost: set up each plugin, in order, before the workers start. */
  async setUpPlugins (): Promise<void> {
    for (const plugin of this.options.plugins) await plugin.setup?.(this.pluginHost(plugin))
  }

  private pluginHost (plugin: HostPlugin): PluginHost {
    return {
      options: this.options,
      registry: this.registry,
      emit: (event, ...args) => (this as EventEmitter).emit(event, ...args),
      stats: () => this.stats(),
      on: (event, listener) => { (this as EventEmitter).on(event, listener as (...args: unknown[]) => void) },
      off: (event, listener) => { (this as EventEmitter).off(event, listener as (...args: unknown[]) => void) },
      quotaList: () => this.hostQuotas.list(),
      inspect: (type, key, options) => this.inspect(type, key, options),
      callLatency: () => this.pending.latencyWindow(),
      store: this.localStore,
      gateway: (routes) => {
        if (plugin.routes !== true) throw new InvalidArgumentError(`plugin ${plugin.name} does not declare routes: true`)
        if (this.gateway !== null) throw new InvalidArgumentError(`plugin ${plugin.name}: the gateway is taken already`)
        this.gateway = new Gateway({
          mesh: this.mesh,
          loop: this.loop,
          pending: this.pending,
          follows: () => this.follows,
          epochOf: (t) => this.workers.epochOf(t),
          maxMessageBytes: this.options.maxMessageBytes
        })
        this.gateway.attach(routes)
        return this.gateway
      },
      quotas: this.hostQuotas,
      listAgents: (lister) => this.listing.replace(lister),
      unsavedIds: (prefix) => this.listing.unsavedIds(prefix),
      expose: (name, value) => { (this as { cluster: object })[name] = value },
      provide: (name, value) => { this.shared.set(name, value) },
      use: <T>(name: string) => this.shared.get(name) as T | undefined
    }
  }

  /** @internal createHost: a plugin's setup failed before anything started: release what the host opened. */
  async abandon (): Promise<void> {
    this.life.stopping = true
    this.life.closed = true
    await this.localStore?.close()
  }

  /** @internal Start the workers; resolves when every one has loaded the agents module. */
  async start (): Promise<void> {
    try {
      await this.workers.start()
    } catch (err) {
      await this.localStore?.close()
      throw err
    }
    this.loop.start()
    this.acks?.start(() => true)
    this.redelivery?.start()
    this.clock.start()
  }

  /** The host clock's current tick: 0 at start, +1 every `tickMs` (or per `advance` with the manual clock). */
  get tick (): number {
    return this.clock.now
  }

  /**
   * Manual clock only (`createHost({ clock: 'manual' })`): move time `ticks` ticks on.
   * Resolves once every worker has fired the timers due by then and run the turns they
   * caused (and whatever those sent), committed; it does not wait for async handlers.
   */
  advance (ticks: number): Promise<void> {
    return this.clock.advance(ticks)
  }

  /**
   * A handle on one agent: `type` is a type name or the definition itself (for typed
   * calls). The agent is activated by its first message, not by this.
   */
  ref<D extends AgentDefinition> (type: D, key: string, options?: RefOptions): AgentRef<D>
  ref (type: string, key: string, options?: RefOptions): AgentRef
  ref (type: string | AgentDefinition, key: string, options?: RefOptions): AgentRef {
    return this.router.ref(type, key, options)
  }

  /**
   * Every agent that exists, once each: those in the store (an LMDB range scan) and
   * those resident but not stored yet (activated by a query, or `durable: false`).
   * Agents created while the listing runs may or may not appear.
   */
  agents (filter: AgentFilter = {}): AsyncGenerator<AgentId, void, undefined> {
    return this.listing.agents(filter)
  }

  /**
   * A read-only look at one agent on this host: where it lives (shard, thread), whether it
   * is resident, its committed state, its first `storageKeys` (default 100) `ctx.storage`
   * keys and its pending reminders. Delivers nothing: the agent is not activated, no
   * handler runs (thread/inspect-agent.ts). In a cluster it reports this host's view —
   * `served` says whether this host serves the agent's shard now.
   */
  async inspect (type: string, key: string, options: { readonly quota?: string, readonly storageKeys?: number } = {}): Promise<AgentInspection> {
    const info = this.registry.get(type) ?? this.registry.require(checkName('type', type))
    checkKey(key)
    const quota = options.quota === undefined ? DEFAULT_QUOTA : checkName('quota', options.quota)
    const limit = options.storageKeys ?? 100
    if (!Number.isInteger(limit) || limit < 0 || limit > 10_000) throw new InvalidArgumentError(`storageKeys must be an integer from 0 to 10000 (got ${String(limit)})`)
    if (this.life.closed) throw new HostClosedError()
    const id = idString(quota, info.type, key)
    const hash = hashId(id)
    const shard = shardOf(hash)
    const thread = this.loop.ownerOf(hash)
    const states = this.mesh.shardStates
    const served = states === null || new Uint8Array(states)[shard] === SHARD_LOCAL
    const runtime = this.loop.runtime
    const seen = thread === 0 && runtime !== null
      ? inspectOnThread(runtime, id, hash, info.index, limit)
      : await this.workers.inspect(thread, id, hash, info.index, limit)
    if (seen === null) throw new WorkerCrashedError(`worker ${thread} is restarting: agent ${printable(id)} cannot be inspected now, retry`, { thread })
    return { id: { quota, type: info.type, key }, shard, thread, served, ...seen }
  }

  /** Per-thread figures read from shared memory (no round trip), and the host's own. */
  stats (): HostStats {
    const workers = this.ownerThreads().map((t) => readWorkerStats(this.mesh, t, this.workers.restartsOf(t)))
    const stats = hostStats(this.mesh, workers, {
      pendingCalls: this.pending.size, agentErrorsDropped: this.workers.agentErrorsDropped, mainGc: readGcStats(this.mesh, 0), offload: this.pool?.stats() ?? null
    })
    for (const plugin of this.options.plugins) {
      const extra = plugin.stats?.()
      if (extra !== undefined) (stats as unknown as Record<string, unknown>)[plugin.name] = extra
    }
    return stats
  }

  /** Prometheus text exposition (prom-client), every thread's figures aggregated. */
  async metrics (): Promise<string> {
    const text = await hostMetrics(this.mesh, this.ownerThreads(), (t) => this.workers.restartsOf(t), {
      pendingCalls: this.pending.size,
      followers: this.follows.size,
      offload: this.pool?.stats() ?? null,
      quotas: this.hostQuotas.list(),
      agentErrorsDropped: this.workers.agentErrorsDropped
    })
    let extra = ''
    for (const plugin of this.options.plugins) extra += plugin.metrics?.() ?? ''
    return extra === '' ? text : text + (text.endsWith('\n') ? '' : '\n') + extra
  }

  /** Threads that own agents: the workers, or the main thread with `workers: 0`. */
  private ownerThreads (): number[] {
    return this.options.workers === 0 ? [0] : this.workers.threads
  }

  /**
   * Stop taking calls, let in-flight work finish (up to `closeTimeoutMs`), commit, and
   * stop the workers. Calls still pending after that fail with HostClosedError.
   */
  close (): Promise<void> {
    this.closing ??= this.closeAll()
    return this.closing
  }

  /** Plugins first, last set up first, while the host still serves (a cluster hands its shards over); then the host. */
  private async closeAll (): Promise<void> {
    let failure: unknown = null
    for (const plugin of [...this.options.plugins].reverse()) {
      try {
        await plugin.close?.()
      } catch (err) {
        failure ??= err
      }
    }
    this.life.stopping = true
    await shutDown({
        closeTimeoutMs: this.options.closeTimeoutMs,
        mesh: this.mesh,
        loop: this.loop,
        clock: this.clock,
        pending: this.pending,
        follows: this.follows,
        workers: this.workers,
        life: this.life,
        redelivery: this.redelivery,
        acks: this.acks,
        pool: this.pool,
        store: this.localStore
    })
    if (failure !== null) throw failure
  }

  private emitAgentError (id: string, method: string, error: WireError): void {
    if (this.agentErrorListeners[0] === 0) return
    this.emit('agent-error', { id: id === '' ? null : parseId(id), method, error: errorFromWire(error) })
  }
}

export async function createHost (options: HostOptions): Promise<Host> {
  const resolved = resolveOptions(options)
  const registry = await loadRegistry(resolved.agents)
  // piscina is loaded only by hosts that offload (its import alone costs ≈ 40 ms)
  const pool = resolved.offload === null ? null : await OffloadPool.start(resolved.offload)
  const host = new Host(resolved, registry, pool)
  try {
    await host.setUpPlugins()
  } catch (err) {
    await host.abandon()
    await pool?.close()
    throw err
  }
  try {
    await host.start()
  } catch (err) {
    // the plugins set up already hold what they opened (a cluster: its link server, its lease)
    for (const plugin of [...resolved.plugins].reverse()) await Promise.resolve(plugin.close?.()).catch(() => {})
    await pool?.close()
    throw err
  }
  try {
    for (const plugin of resolved.plugins) await plugin.start?.()
  } catch (err) {
    await host.close().catch(() => {})
    throw err
  }
  return host
}
