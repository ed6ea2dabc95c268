/**
 * The host: what `createHost` returns. It owns the shared memory, the worker threads
 * and the main thread's ThreadLoop, turns `ref.call`/`ref.cast` into frames on the
 * ring of the thread that owns the agent, and matches replies to pending calls.
 *
 * Worker death (an uncaught error, OOM, `process.exit` in user code): the replies
 * the worker already published are delivered, every other call routed to it fails
 * with WorkerCrashedError (retriable), every ring touching it is replaced, and a new
 * worker takes over the same shards. Calls made meanwhile wait in the new rings.
 *
 * The host keeps the process alive (its workers do) until `close()`, like a server.
 */
import { EventEmitter } from 'node:events'
import { Worker } from 'node:worker_threads'
import { DEFAULT_QUOTA, MAX_ID_BYTES, checkKey, checkName, idString, kIdSeparator, parseId, typeOf, utf8Length } from '../../native-free-core/agent/agent-id.ts'
import type { AgentId } from '../../native-free-core/agent/agent-id.ts'
import { isAgentDefinition } from '../../native-free-core/agent/define-agent.ts'
import type { AgentDefinition } from '../../native-free-core/agent/define-agent.ts'
import { MSG_CALL, MSG_CAST, MSG_FOLLOW, MSG_UNFOLLOW } from '../../native-free-core/agent/envelope.ts'
import {
  HostClosedError, InvalidArgumentError, OffloadError, ShoalError, UnknownQuotaError, WorkerCrashedError, errorFromWire,
  messageOf, toWire
} from '../../native-free-core/errors.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { hashAfter, prefixState } from '../../native-free-core/placement/hash.ts'
import { ringDepth } from '../../native-free-core/ring/ring-queue.ts'
import type { AgentRegistry, MethodInfo } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { Store } from '../../native-free-core/storage/store.ts'
import { AgentRef } from './agent-ref.ts'
import type { RefAddress, RefTarget } from './agent-ref.ts'
import { stateCodec } from '../thread/codec.ts'
import { loadRegistry } from './load-agents.ts'
import { openStore } from '../storage/open-store.ts'
import { OutboxRedelivery } from '../storage/outbox-redelivery.ts'
import { createMesh, kStatBusy, kStatOverflowBytes, kStatPendingCommit, kStatRunning, renewRings, statsView } from '../thread/mesh.ts'
import { MemoryStore } from '../../native-free-core/storage/store.ts'
import { isQuotaRecords } from '../../native-free-core/tenancy/quota-store.ts'
import { HostClock } from '../time/host-clock.ts'
import type { Mesh } from '../thread/mesh.ts'
import { resolveOptions } from './options.ts'
import type { HostOptions, ResolvedHostOptions } from './options.ts'
import { PendingCalls } from './pending-calls.ts'
import type { CallOptions } from './pending-calls.ts'
import { ThreadLoop } from '../thread/thread-loop.ts'
import { TestClock } from '../time/test-clock.ts'
import { OffloadPool } from '../offload/offload-pool.ts'
import { readWorkerStats } from '../observe/host-stats.ts'
import type { HostStats } from '../observe/host-stats.ts'
import { hostMetrics } from '../observe/metrics.ts'
import { HostQuotas } from '../tenancy/host-quotas.ts'
import type { QuotaUpdate, Quotas } from '../tenancy/host-quotas.ts'
import { QuotaGate } from '../../native-free-core/tenancy/quota-gate.ts'
import { FRAME_STATE, FRAME_TASK_DONE } from '../thread/frame-codec.ts'
import { Follows } from './follow.ts'
import type { FollowOptions, Subscription } from './follow.ts'
import type { ControlMessage, WorkerData, WorkerMessage } from '../thread/worker-entry.ts'

const workerUrl = new URL('../thread/worker-entry.js', import.meta.url)

export interface AgentErrorEvent {
  /** The agent, when the error concerns one. */
  readonly id: AgentId | null
  readonly method: string
  readonly error: ShoalError
}

export interface WorkerRestartEvent {
  readonly thread: number
  readonly exitCode: number | null
  readonly error: Error | null
  /** Calls that failed with WorkerCrashedError. */
  readonly failedCalls: number
}

export interface HostEvents {
  'agent-error': [AgentErrorEvent]
  'worker-restart': [WorkerRestartEvent]
  error: [Error]
}

export interface RefOptions {
  readonly quota?: string
}

/** Which agents `host.agents()` lists: any quota and type unless given. */
export interface AgentFilter {
  readonly type?: string
  readonly quota?: string
}

class WorkerSlot {
  worker: Worker | null = null
  epoch = 0
  restarts = 0
  recentCrashes: number[] = []
  lastError: Error | null = null
  ready = false
  /** Quota updates this worker has not acknowledged yet, by sequence number. */
  readonly quotaAcks = new Map<number, () => void>()
  readonly thread: number
  constructor (thread: number) {
    this.thread = thread
  }
}

export class Host extends EventEmitter<HostEvents> implements RefTarget {
  readonly options: ResolvedHostOptions
  readonly registry: AgentRegistry
  private readonly mesh: Mesh
  private readonly loop: ThreadLoop
  private readonly pending: PendingCalls
  private readonly slots: WorkerSlot[] = []
  private readonly agentErrorListeners: Int32Array
  /** The main thread's own store: the runtime's with `workers: 0`; else, with `dataDir`, a handle on LMDB for listing and quotas. */
  private readonly localStore: Store | null = null
  private readonly redelivery: OutboxRedelivery | null = null
  private readonly listings = new Map<number, (ids: readonly string[]) => void>()
  private nextListing = 0
  private readonly clock: HostClock
  private readonly pool: OffloadPool | null
  private readonly follows: Follows
  /** `host.quotas`: create, change, read and delete quotas. */
  readonly quotas: Quotas
  private readonly hostQuotas: HostQuotas
  private quotaSeq = 0
  private closing: Promise<void> | null = null
  private closed = false

  /** Use `createHost`. */
  constructor (options: ResolvedHostOptions, registry: AgentRegistry, pool: OffloadPool | null = null) {
    super()
    this.options = options
    this.registry = registry
    this.pending = new PendingCalls(options.callTimeoutMs)
    this.mesh = createMesh(options.workers, options.ringBytes)
    this.agentErrorListeners = new Int32Array(new SharedArrayBuffer(4))
    this.loop = new ThreadLoop({
      index: 0,
      mesh: this.mesh,
      maxMessageBytes: options.maxMessageBytes,
      onReply: (callId, ok, value) => this.pending.settle(callId, ok, value),
      onAgentError: (id, method, error) => this.emitAgentError(id, method, error),
      onTask: (peer, taskId, name, input) => this.runTask(peer, taskId, name, input),
      onResult: (kind, id, ok, value) => { if (kind === FRAME_STATE) this.follows.deliver(id, ok, value) }
    })
    this.clock = new HostClock(this.mesh, options.clock, options.tickMs, {
      agentThreads: options.workers === 0 ? [0] : Array.from({ length: options.workers }, (_, i) => i + 1),
      alive: (t) => t === 0 || (this.slots[t - 1]?.worker != null && this.slots[t - 1]!.ready),
      mainQuiet: () => this.loop.quiet
    })
    this.follows = new Follows({
      subscribe: (sub) => this.sendFollow(sub, MSG_FOLLOW),
      unsubscribe: (sub) => { if (!this.closed) this.sendFollow(sub, MSG_UNFOLLOW) }
    })
    this.pool = pool
    if (options.workers === 0 || options.dataDir !== undefined) this.localStore = openStore(options.dataDir, options.durability)
    // quota limits and counts persist through the store (QuotaRecords); with no store of
    // its own the main thread keeps the limits in memory, for the host's lifetime
    const records = isQuotaRecords(this.localStore) ? this.localStore : new MemoryStore()
    this.hostQuotas = new HostQuotas(this.mesh.threads, records, (u) => this.broadcastQuota(u))
    this.quotas = this.hostQuotas
    if (options.workers === 0) {
      const pool = this.pool
      const store = this.localStore!
      const runtime = this.loop.runtime = new ShardRuntime({
        registry,
        store,
        codec: stateCodec,
        output: this.loop,
        maxMessageBytes: options.maxMessageBytes,
        quotas: new QuotaGate(this.hostQuotas.directory, this.hostQuotas.counters, 0),
        ...(options.testClock !== null ? { clock: TestClock.reader(options.testClock) } : {}),
        ...(pool !== null ? { offload: (name: string, input: unknown) => pool.run(name, input) } : {})
      })
      if (store.durable) this.redelivery = new OutboxRedelivery(runtime, store, () => true, () => this.loop.wake())
    }
    // workers report agent errors only while someone listens (see AgentErrorReporter)
    const untyped = this as EventEmitter
    untyped.on('newListener', (event: string | symbol) => { if (event === 'agent-error') Atomics.add(this.agentErrorListeners, 0, 1) })
    untyped.on('removeListener', (event: string | symbol) => { if (event === 'agent-error') Atomics.sub(this.agentErrorListeners, 0, 1) })
  }

  /** Start the workers; resolves when every one has loaded the agents module. */
  async start (): Promise<void> {
    for (let t = 1; t < this.mesh.threads; t++) this.slots.push(new WorkerSlot(t))
    try {
      await Promise.all(this.slots.map((slot) => this.spawn(slot)))
    } catch (err) {
      this.closed = true
      await Promise.all(this.slots.map((s) => s.worker?.terminate()))
      await this.localStore?.close()
      throw err
    }
    this.loop.start()
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
    // a registered type name is valid by construction: the name check only runs to explain a miss
    const info = this.registry.get(isAgentDefinition(type) ? type.type : type) ?? this.registry.require(checkName('type', type))
    checkKey(key)
    const quota = options?.quota === undefined ? DEFAULT_QUOTA : checkName('quota', options.quota)
    if (quota !== DEFAULT_QUOTA && !this.hostQuotas.has(quota)) throw unknownQuota(quota)
    const id = idString(quota, info.type, key)
    if (id.length * 3 > MAX_ID_BYTES && utf8Length(id) > MAX_ID_BYTES) {
      throw new InvalidArgumentError(`agent id is longer than ${MAX_ID_BYTES} UTF-8 bytes`, { type: info.type, quota })
    }
    return new AgentRef(this, info, quota, key, id, hashAfter(this.prefixHash(quota, info.index), key))
  }

  /**
   * FNV state after `quota \x1f type \x1f`, cached per quota and type index: a new ref
   * hashes only its key. (Quota strings are usually the same objects, so the Map
   * lookup reuses their cached V8 hash.)
   */
  private prefixHash (quota: string, typeIndex: number): number {
    let states = this.prefixStates.get(quota)
    if (states === undefined) {
      states = this.registry.types.map((t) => prefixState(idString(quota, t.type, '')))
      if (this.prefixStates.size < 10_000) this.prefixStates.set(quota, states)
    }
    return states[typeIndex]!
  }

  private readonly prefixStates = new Map<string, number[]>()

  /** @internal RefTarget */
  call (to: RefAddress, method: string, payload: unknown, options: CallOptions | undefined): Promise<unknown> {
    if (this.closed || this.closing !== null) return Promise.reject(new HostClosedError())
    let m: MethodInfo
    try {
      m = this.resolve(to, method)
    } catch (err) {
      return Promise.reject(err)
    }
    if (options?.signal?.aborted === true) {
      return Promise.reject(errorFromWire({ code: 'SHOAL_ERR_ABORTED', message: `${to.info.type}.${method} was aborted before it was sent` }))
    }
    const loop = this.loop
    const thread = loop.ownerOf(to.hash)
    const [callId, promise] = this.pending.add(thread, this.slots[thread - 1]?.epoch ?? 0, `${to.info.type}.${method}`, options)
    try {
      loop.writer.message(loop.producers[thread]!, MSG_CALL, to.id, to.idBytes, to.hash, to.info.index, m.index, payload, 0, callId)
    } catch (err) {
      this.pending.fail(callId, err instanceof ShoalError ? err : new ShoalError(messageOf(err)))
      return promise
    }
    loop.touched(thread)
    return promise
  }

  /** @internal RefTarget */
  cast (to: RefAddress, method: string, payload: unknown): void {
    if (this.closed || this.closing !== null) throw new HostClosedError()
    const m = this.resolve(to, method)
    const loop = this.loop
    const thread = loop.ownerOf(to.hash)
    loop.writer.message(loop.producers[thread]!, MSG_CAST, to.id, to.idBytes, to.hash, to.info.index, m.index, payload, 0, 0)
    loop.touched(thread)
  }

  /** @internal RefTarget */
  follow (to: RefAddress, options: FollowOptions | undefined): AsyncIterableIterator<unknown> {
    if (this.closed || this.closing !== null) throw new HostClosedError()
    if (to.quota !== DEFAULT_QUOTA && !this.hostQuotas.has(to.quota)) throw unknownQuota(to.quota)
    return this.follows.open(to, options)
  }

  /** MSG_FOLLOW / MSG_UNFOLLOW to the agent's owner; a follow id travels as the call id. */
  private sendFollow (sub: Subscription<unknown>, kind: number): void {
    const loop = this.loop
    const to = sub.to
    const thread = kind === MSG_FOLLOW ? loop.ownerOf(to.hash) : sub.thread
    if (kind === MSG_FOLLOW) sub.thread = thread
    const ring = loop.producers[thread]
    if (ring == null) return
    loop.writer.message(ring, kind, to.id, to.idBytes, to.hash, to.info.index, 0, undefined, 0, sub.followId)
    loop.touched(thread)
  }

  /** The method of a ref's type; from the second message on, the ref keeps its id's bytes. */
  private resolve (to: RefAddress, method: string): MethodInfo {
    if (to.quota !== DEFAULT_QUOTA && !this.hostQuotas.has(to.quota)) throw unknownQuota(to.quota)
    if (++to.uses === 2) to.idBytes = Buffer.from(to.id, 'utf8')
    if (method === to.lastMethod && to.lastMethodInfo !== null) return to.lastMethodInfo
    const m = this.registry.method(to.info, method)
    to.lastMethod = method
    to.lastMethodInfo = m
    return m
  }

  /**
   * Every agent that exists, once each: those in the store (an LMDB range scan) and
   * those resident but not stored yet (activated by a query, or `durable: false`).
   * Agents created while the listing runs may or may not appear.
   */
  async * agents (filter: AgentFilter = {}): AsyncGenerator<AgentId, void, undefined> {
    if (this.closed || this.closing !== null) throw new HostClosedError()
    if (filter === null || typeof filter !== 'object') {
      throw new InvalidArgumentError(`host.agents(filter): filter must be an object { type?, quota? } (got ${String(filter)})`)
    }
    const type = filter.type === undefined ? undefined : this.registry.require(checkName('type', filter.type)).type
    const quota = filter.quota === undefined ? undefined : checkName('quota', filter.quota)
    const prefix = quota === undefined ? '' : type === undefined ? quota + kIdSeparator : idString(quota, type, '')
    const matches = type === undefined || quota !== undefined ? (_id: string) => true : (id: string) => typeOf(id) === type
    // unsaved residents first: an id committed while the store is scanned is then yielded once, by the scan
    const unsaved = new Set<string>()
    for (const id of await this.unsavedIds(prefix)) if (matches(id)) unsaved.add(id)
    if (this.localStore?.durable === true) {
      for (const id of this.localStore.ids(prefix)) {
        if (!matches(id)) continue
        unsaved.delete(id)
        yield parseId(id)
      }
    }
    for (const id of unsaved) yield parseId(id)
  }

  /** Ids the main thread cannot read from LMDB: from every thread's table (and memory stores). */
  private async unsavedIds (prefix: string): Promise<string[]> {
    if (this.options.workers === 0) {
      const resident = this.loop.runtime!.residentIds(prefix)
      return this.localStore!.durable ? resident : [...this.localStore!.ids(prefix), ...resident]
    }
    const parts = await Promise.all(this.slots.map((slot) => new Promise<readonly string[]>((resolve) => {
      const worker = slot.worker
      if (worker === null || !slot.ready) { resolve([]); return }
      const req = ++this.nextListing
      this.listings.set(req, resolve)
      // a worker that dies before answering answers nothing: its resident agents are gone with it
      worker.once('exit', () => { if (this.listings.delete(req)) resolve([]) })
      worker.postMessage({ type: 'list', req, prefix } satisfies ControlMessage)
    })))
    return parts.flat()
  }

  /** Per-thread figures read from shared memory (no round trip), and the host's own. */
  stats (): HostStats {
    const workers = this.ownerThreads().map((t) => readWorkerStats(this.mesh, t, this.slots[t - 1]?.restarts ?? 0))
    let activeAgents = 0
    let messages = 0
    for (const w of workers) {
      activeAgents += w.activeAgents
      messages += w.messages
    }
    return { activeAgents, messages, pendingCalls: this.pending.size, workers, offload: this.pool?.stats() ?? null }
  }

  /** Prometheus text exposition (prom-client), every thread's figures aggregated. */
  metrics (): Promise<string> {
    return hostMetrics(this.mesh, this.ownerThreads(), (t) => this.slots[t - 1]?.restarts ?? 0, {
      pendingCalls: this.pending.size,
      followers: this.follows.size,
      offload: this.pool?.stats() ?? null,
      quotas: this.hostQuotas.list()
    })
  }

  /** Threads that own agents: the workers, or the main thread with `workers: 0`. */
  private ownerThreads (): number[] {
    return this.options.workers === 0 ? [0] : this.slots.map((s) => s.thread)
  }

  /**
   * Stop taking calls, let in-flight work finish (up to `closeTimeoutMs`), commit, and
   * stop the workers. Calls still pending after that fail with HostClosedError.
   */
  close (): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown (): Promise<void> {
    this.clock.stop()
    const deadline = Date.now() + this.options.closeTimeoutMs
    let quietChecks = 0
    while (Date.now() < deadline && quietChecks < 2) {
      await delay(quietChecks === 0 ? 1 : 2)
      quietChecks = this.quiescent() ? quietChecks + 1 : 0
    }
    this.closed = true
    await Promise.all(this.slots.map((slot) => this.stopWorker(slot)))
    if (this.loop.runtime !== null) await this.loop.drainAndStop()
    else this.loop.stop()
    this.pending.failAll(() => new HostClosedError('the host closed before the call completed'))
    this.follows.endAll()
    this.redelivery?.stop()
    await this.pool?.close()
    await this.localStore?.close()
  }

  /** Nothing in any ring or overflow, no pass running, no turn or commit in flight, no call waiting. */
  private quiescent (): boolean {
    if (this.pending.size !== 0 || !this.loop.idle) return false
    for (const row of this.mesh.rings) for (const ring of row) if (ring != null && ringDepth(ring) !== 0) return false
    for (const slot of this.slots) {
      const s = statsView(this.mesh, slot.thread)
      if (s[kStatRunning] !== 0 || s[kStatBusy] !== 0 || s[kStatOverflowBytes] !== 0 || s[kStatPendingCommit] !== 0) return false
    }
    return true
  }

  private stopWorker (slot: WorkerSlot): Promise<void> {
    const worker = slot.worker
    if (worker === null) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => { void worker.terminate() }, Math.max(1000, this.options.closeTimeoutMs))
      worker.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      worker.postMessage({ type: 'stop' } satisfies ControlMessage)
    })
  }

  private spawn (slot: WorkerSlot): Promise<void> {
    const data: WorkerData = {
      index: slot.thread,
      agents: this.options.agents,
      fingerprint: this.registry.fingerprint(),
      mesh: this.mesh,
      maxMessageBytes: this.options.maxMessageBytes,
      dataDir: this.options.dataDir,
      durability: this.options.durability,
      listeners: this.agentErrorListeners.buffer as SharedArrayBuffer,
      clock: this.options.testClock,
      offload: this.pool !== null,
      quotas: this.hostQuotas.snapshot()
    }
    const worker = new Worker(workerUrl, { workerData: data })
    slot.worker = worker
    slot.ready = false
    slot.lastError = null
    return new Promise((resolve, reject) => {
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          slot.ready = true
          resolve()
        } else if (m.type === 'agent-errors') {
          for (const e of m.errors) this.emitAgentError(e.id, e.method, e.error)
        } else if (m.type === 'quota-ack') {
          slot.quotaAcks.get(m.seq)?.()
        } else if (m.type === 'listed') {
          const resolve = this.listings.get(m.req)
          this.listings.delete(m.req)
          resolve?.(m.ids)
        }
      })
      worker.on('error', (err) => { slot.lastError = err })
      worker.on('exit', (code) => {
        if (slot.worker !== worker) return
        // its replacement starts from the whole directory: nothing to wait for
        for (const ack of [...slot.quotaAcks.values()]) ack()
        slot.worker = null
        if (!slot.ready) {
          reject(slot.lastError ?? new ShoalError(`worker ${slot.thread} exited with code ${code} during startup`))
          return
        }
        if (!this.closed) this.restart(slot, code)
      })
    })
  }

  /** A worker died: deliver what it published, fail what it owed, replace its rings, start another. */
  private restart (slot: WorkerSlot, exitCode: number): void {
    const t = slot.thread
    const error = slot.lastError
    this.loop.drainFrom(t)
    slot.epoch++
    slot.restarts++
    const before = this.pending.size
    this.pending.failThread(t, slot.epoch, () => new WorkerCrashedError(
      `worker ${t} died (${error ? messageOf(error) : `exit code ${exitCode}`}) before replying; it has been restarted`,
      { thread: t, exitCode }))
    const failedCalls = before - this.pending.size
    renewRings(this.mesh, t)
    this.loop.attach(t)
    this.follows.renew(t)
    // the dead worker's uncommitted reservations died with it; with a memory store, so did its agents
    this.hostQuotas.counters.resetThread(t, this.options.dataDir === undefined)
    for (const other of this.slots) {
      if (other === slot || other.worker === null) continue
      other.worker.postMessage({
        type: 'attach', peer: t, out: this.mesh.rings[other.thread]![t]!, in: this.mesh.rings[t]![other.thread]!
      } satisfies ControlMessage)
    }
    const now = Date.now()
    slot.recentCrashes = slot.recentCrashes.filter((at) => now - at < 10_000)
    slot.recentCrashes.push(now)
    // a crash loop (a worker that dies on every start) backs off instead of spinning
    const backoff = slot.recentCrashes.length <= 3 ? 0 : Math.min(5000, 50 * 2 ** slot.recentCrashes.length)
    this.emit('worker-restart', { thread: t, exitCode, error, failedCalls })
    setTimeout(() => {
      if (this.closed) return
      this.spawn(slot).catch((err: unknown) => {
        this.emit('error', err instanceof Error ? err : new Error(String(err)))
        if (!this.closed) this.restart(slot, -1)
      })
    }, backoff)
  }

  /** Send a directory change to every worker and wait until each has applied it (or died). */
  private broadcastQuota (update: QuotaUpdate): Promise<void> {
    const seq = ++this.quotaSeq
    const waits: Array<Promise<void>> = []
    for (const slot of this.slots) {
      const worker = slot.worker
      if (worker === null) continue // restarting: the replacement gets the whole directory
      waits.push(new Promise<void>((resolve) => {
        slot.quotaAcks.set(seq, () => {
          slot.quotaAcks.delete(seq)
          resolve()
        })
      }))
      worker.postMessage({ type: 'quota', seq, ...update } satisfies ControlMessage)
    }
    return Promise.all(waits).then(() => {})
  }

  /** A worker's `ctx.offload`: run it on the pool, send the result back to that incarnation of the worker. */
  private runTask (peer: number, taskId: number, name: string, input: unknown): void {
    const slot = this.slots[peer - 1]
    const epoch = slot?.epoch ?? 0
    const done = (ok: boolean, value: unknown): void => {
      if ((slot?.epoch ?? 0) !== epoch || this.closed) return // the worker restarted: its task died with it
      const ring = this.loop.producers[peer]
      if (ring == null) return
      this.loop.writer.result(ring, FRAME_TASK_DONE, taskId, ok, value)
      this.loop.touched(peer)
    }
    if (this.pool === null) {
      done(false, new OffloadError(`ctx.offload(${JSON.stringify(name)}) needs the host option \`offload: { filename }\``, { task: name }).toWire())
      return
    }
    this.pool.run(name, input).then((value) => done(true, value), (err: unknown) => done(false, toWire(err)))
  }

  private emitAgentError (id: string, method: string, error: WireError): void {
    if (this.agentErrorListeners[0] === 0) return
    this.emit('agent-error', { id: id === '' ? null : parseId(id), method, error: errorFromWire(error) })
  }
}

function unknownQuota (quota: string): UnknownQuotaError {
  return new UnknownQuotaError(`quota ${JSON.stringify(quota)} does not exist (create it with host.quotas.set)`, { quota })
}

function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export async function createHost (options: HostOptions): Promise<Host> {
  const resolved = resolveOptions(options)
  const registry = await loadRegistry(resolved.agents)
  // piscina is loaded only by hosts that offload (its import alone costs ≈ 40 ms)
  const pool = resolved.offload === null ? null : await OffloadPool.start(resolved.offload)
  const host = new Host(resolved, registry, pool)
  try {
    await host.start()
  } catch (err) {
    await pool?.close()
    throw err
  }
  return host
}
