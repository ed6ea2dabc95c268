/**
 * Worker supervision: one slot per worker thread, each running a `ThreadLoop` with the
 * shards the mesh gives it (thread/worker-entry.ts). Starts them, relays their control
 * messages, asks them to list their resident agents, broadcasts quota changes and waits
 * for their acknowledgements, and stops them.
 *
 * Worker death (an uncaught error, OOM, `process.exit` in user code): the replies
 * the worker already published are delivered, every other call routed to it fails
 * with WorkerCrashedError (retriable), every ring touching it is replaced, and a new
 * worker takes over the same shards. Calls made meanwhile wait in the new rings.
 *
 * Each worker's isolate is sized by the host option `workerYoungGenerationMb` or V8's
 * default, never by the process's semi-space flags, and starts with its young generation
 * at its largest and a 256 MiB initial old-generation limit (worker-young-generation.ts).
 */
import { Worker } from 'node:worker_threads'
import type { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { WorkerCrashedError, WorkerStartError, errorFromWire, messageOf } from '../../native-free-core/errors.ts'
import type { ShoalError } from '../../native-free-core/errors.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import type { HostQuotas, QuotaUpdate } from '../tenancy/host-quotas.ts'
import { renewRings } from '../thread/mesh.ts'
import type { Mesh } from '../thread/mesh.ts'
import type { ThreadLoop } from '../thread/thread-loop.ts'
import type { ControlMessage, WorkerData, WorkerMessage } from '../thread/worker-entry.ts'
import type { Follows } from './follow.ts'
import type { HostLifecycle } from './lifecycle.ts'
import type { ResolvedHostOptions } from './options.ts'
import type { PendingCalls } from './pending-calls.ts'
import type { WorkerRestartEvent } from './host-events.ts'
import type { ThreadInspection } from '../thread/inspect-agent.ts'
import { claimForTerminate, initWord } from '../thread/init-phase.ts'
import { engineWorkerHeap, workerWithOwnYoungGeneration } from './worker-young-generation.ts'

const workerUrl = new URL('../thread/worker-entry.js', import.meta.url)

class WorkerSlot {
  worker: Worker | null = null
  epoch = 0
  restarts = 0
  recentCrashes: number[] = []
  lastError: Error | null = null
  ready = false
  /** The current worker's start phase, shared with it (init-phase.ts). */
  init = initWord()
  /** Quota updates this worker has not acknowledged yet, by sequence number. */
  readonly quotaAcks = new Map<number, () => void>()
  readonly thread: number
  constructor (thread: number) {
    this.thread = thread
  }
}

export interface SupervisorParts {
  readonly options: ResolvedHostOptions
  readonly registry: AgentRegistry
  readonly mesh: Mesh
  /** The main thread's loop: drains a dead worker's rings and attaches the new ones. */
  readonly loop: ThreadLoop
  readonly pending: PendingCalls
  readonly quotas: HostQuotas
  readonly life: HostLifecycle
  /** Counts the host's agent-error listeners (workers report only while there are some). */
  readonly agentErrorListeners: SharedArrayBuffer
  /** The host runs an offload pool: workers send their tasks to the main thread. */
  readonly offload: boolean
  /** Commits are replicated (a cluster with replicas): each worker sends its commit journals to the main thread. */
  readonly replicates: () => boolean
  /** The LMDB store's known-stateless shards (LmdbStore.findStatelessShards), shared with every worker; null: none kept. */
  readonly stateless: SharedArrayBuffer | null
  follows (): Follows
  agentError (id: string, method: string, error: WireError): void
  /** A worker died and was replaced, or a replacement failed to start (then `error` is its WorkerStartError, and it is tried again). */
  restarted (event: WorkerRestartEvent): void
}

export class WorkerSupervisor {
  private readonly parts: SupervisorParts
  private readonly slots: WorkerSlot[] = []
  private readonly listings = new Map<number, (ids: readonly string[]) => void>()
  private readonly inspections = new Map<number, (result: ThreadInspection | null) => void>()
  private nextListing = 0
  private quotaSeq = 0
  /** Agent-error reports the workers dropped because a batch was full (see AgentErrorReporter). */
  agentErrorsDropped = 0

  constructor (parts: SupervisorParts) {
    this.parts = parts
  }

  /** The worker threads' indices (1..workers). */
  get threads (): number[] {
    return this.slots.map((s) => s.thread)
  }

  /**
   * Start every worker; resolves when each has loaded the agents module. On failure the
   * host is closed and every other worker stopped as at close: asked to stop (one still
   * starting reads it once ready, or fails by itself), terminated only if it takes too
   * long, and never inside LMDB's native start (init-phase.ts) — terminating one there
   * can abort the process.
   */
  async start (): Promise<void> {
    for (let t = 1; t < this.parts.mesh.threads; t++) this.slots.push(new WorkerSlot(t))
    try {
      await Promise.all(this.slots.map((slot) => this.spawn(slot)))
    } catch (err) {
      // closed first: a worker that had started must not be restarted when it exits
      this.parts.life.stopping = true
      this.parts.life.closed = true
      await this.stop()
      throw err
    }
  }

  /** The incarnation of thread `t`'s worker (0 for the main thread). */
  epochOf (t: number): number {
    return this.slots[t - 1]?.epoch ?? 0
  }

  /** How often thread `t`'s worker was restarted. */
  restartsOf (t: number): number {
    return this.slots[t - 1]?.restarts ?? 0
  }

  /** Thread `t` is the main thread, or its worker is up and has loaded the agents. */
  alive (t: number): boolean {
    return t === 0 || (this.slots[t - 1]?.worker != null && this.slots[t - 1]!.ready)
  }

  /** Ids of the agents resident in every worker that start with `prefix`, and that the store may not hold yet. */
  async residentIds (prefix: string): Promise<string[]> {
    const parts = await Promise.all(this.slots.map((slot) => new Promise<readonly string[]>((resolve) => {
      const worker = slot.worker
      if (worker === null || !slot.ready) { resolve([]); return }
      const req = ++this.nextListing
      // a worker that dies before answering answers nothing: its resident agents are gone with it
      const died = (): void => { if (this.listings.delete(req)) resolve([]) }
      this.listings.set(req, (ids) => {
        worker.off('exit', died)
        resolve(ids)
      })
      worker.once('exit', died)
      worker.postMessage({ type: 'list', req, prefix } satisfies ControlMessage)
    })))
    return parts.flat()
  }

  /**
   * What worker `thread` knows of agent `id` (thread/inspect-agent.ts); null if the worker
   * is down or restarting, or dies before answering.
   */
  inspect (thread: number, id: string, hash: number, typeIdx: number, limit: number): Promise<ThreadInspection | null> {
    const slot = this.slots[thread - 1]
    const worker = slot?.worker ?? null
    if (slot === undefined || worker === null || !slot.ready) return Promise.resolve(null)
    return new Promise((resolve) => {
      const req = ++this.nextListing
      // a worker that dies before answering answers nothing (the listener goes with the answer)
      const died = (): void => { if (this.inspections.delete(req)) resolve(null) }
      this.inspections.set(req, (result) => {
        worker.off('exit', died)
        resolve(result)
      })
      worker.once('exit', died)
      worker.postMessage({ type: 'inspect', req, id, hash, typeIdx, limit } satisfies ControlMessage)
    })
  }

  /** Send a directory change to every worker and wait until each has applied it (or died). */
  broadcastQuota (update: QuotaUpdate): Promise<void> {
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

  /** Ask every worker to finish its pass, commit and exit (terminated if it takes too long). */
  stop (): Promise<void> {
    return Promise.all(this.slots.map((slot) => this.stopWorker(slot))).then(() => {})
  }

  private stopWorker (slot: WorkerSlot): Promise<void> {
    const worker = slot.worker
    if (worker === null) return Promise.resolve()
    const init = slot.init
    return new Promise((resolve) => {
      // a worker still loading or opening LMDB is left to finish (then it reads 'stop', or
      // fails and exits): terminated there, it could abort the process (init-phase.ts)
      const terminate = (): void => {
        if (claimForTerminate(init)) void worker.terminate()
        else timer = setTimeout(terminate, 20)
      }
      let timer = setTimeout(terminate, Math.max(1000, this.parts.options.closeTimeoutMs))
      worker.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      // a worker not ready yet reads it once it is (its port queues it until then)
      worker.postMessage({ type: 'stop' } satisfies ControlMessage)
    })
  }

  private spawn (slot: WorkerSlot): Promise<void> {
    const { options, registry, mesh } = this.parts
    const data: WorkerData = {
      index: slot.thread,
      agents: options.agents,
      fingerprint: registry.fingerprint(),
      mesh,
      maxMessageBytes: options.maxMessageBytes,
      dataDir: options.dataDir,
      durability: options.durability,
      flushIntervalMs: options.flushIntervalMs,
      listeners: this.parts.agentErrorListeners,
      clock: options.testClock,
      outbox: options.outbox,
      offload: this.parts.offload,
      quotas: this.parts.quotas.snapshot(),
      replicate: this.parts.replicates(),
      stateless: this.parts.stateless,
      init: (slot.init = initWord()).buffer as SharedArrayBuffer
    }
    const young = options.workerYoungGenerationMb
    // the process's semi-space flags (a tuning of the application's own thread) would
    // override the worker's limits: cleared until its isolate exists, a replacement's too
    // and it starts with the heap of a mass activation: the young generation at its largest, the old unmarked below 256 MiB
    const worker = workerWithOwnYoungGeneration(workerUrl, young === null ? { workerData: data } : { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: young } }, engineWorkerHeap(young))
    slot.worker = worker
    slot.ready = false
    slot.lastError = null
    return new Promise((resolve, reject) => {
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          slot.ready = true
          resolve()
        } else if (m.type === 'agent-errors') {
          this.agentErrorsDropped += m.dropped
          for (const e of m.errors) this.parts.agentError(e.id, e.method, e.error)
        } else if (m.type === 'quota-ack') {
          slot.quotaAcks.get(m.seq)?.()
        } else if (m.type === 'inspected') {
          const resolve = this.inspections.get(m.req)
          this.inspections.delete(m.req)
          resolve?.(m.result)
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
          reject(startFailure(slot.thread, code, slot.lastError))
          return
        }
        if (!this.parts.life.closed) this.restart(slot, code)
      })
    })
  }

  /** A worker died: deliver what it published, fail what it owed, replace its rings, start another. */
  private restart (slot: WorkerSlot, exitCode: number): void {
    const { loop, pending, mesh, life } = this.parts
    const t = slot.thread
    const error = slot.lastError
    loop.drainFrom(t)
    slot.epoch++
    slot.restarts++
    const before = pending.size
    pending.failThread(t, slot.epoch, () => new WorkerCrashedError(
      `worker ${t} died (${error ? messageOf(error) : `exit code ${exitCode}`}) before replying; it has been restarted`,
      { thread: t, exitCode }))
    const failedCalls = before - pending.size
    renewRings(mesh, t)
    loop.attach(t)
    this.parts.follows().renew(t)
    // the dead worker's uncommitted reservations died with it; with a memory store, so did its agents
    this.parts.quotas.counters.resetThread(t, this.parts.options.dataDir === undefined)
    for (const other of this.slots) {
      if (other === slot || other.worker === null) continue
      other.worker.postMessage({
        type: 'attach', peer: t, out: mesh.rings[other.thread]![t]!, in: mesh.rings[t]![other.thread]!
      } satisfies ControlMessage)
    }
    const now = Date.now()
    slot.recentCrashes = slot.recentCrashes.filter((at) => now - at < 10_000)
    slot.recentCrashes.push(now)
    // a crash loop (a worker that dies on every start) backs off instead of spinning
    const backoff = slot.recentCrashes.length <= 3 ? 0 : Math.min(5000, 50 * 2 ** slot.recentCrashes.length)
    this.parts.restarted({ thread: t, exitCode, error, failedCalls })
    setTimeout(() => {
      if (life.closed) return
      this.spawn(slot).catch((err: unknown) => {
        // reported by the next 'worker-restart' (its `error`), never as an EventEmitter
        // 'error', which would kill a process that has no listener for it
        slot.lastError = err as ShoalError
        if (!life.closed) this.restart(slot, -1)
      })
    }, backoff)
  }
}

/**
 * Why a worker did not become ready, as a coded error: a ShoalError raised in the worker
 * (a StorageError from opening the store, ...) keeps its code — it crossed the thread
 * as a plain Error with `code` and `data` copied — and anything else becomes a
 * WorkerStartError whose `cause` is the worker's error.
 */
function startFailure (thread: number, exitCode: number, error: Error | null): ShoalError {
  const wire = error as { code?: unknown, data?: unknown } | null
  if (error !== null && typeof wire!.code === 'string' && wire!.code.startsWith('SHOAL_ERR_')) {
    const rebuilt = errorFromWire({ code: wire!.code, message: error.message, data: wire!.data })
    if (error.stack !== undefined) rebuilt.stack = error.stack
    return rebuilt
  }
  const why = error !== null ? messageOf(error) : `it exited with code ${exitCode}`
  return new WorkerStartError(`worker ${thread} failed to start: ${why}`, { thread, exitCode }, error !== null ? { cause: error } : undefined)
}
