/**
 * Entry point of a worker thread: import the agents module, attach to the mesh, run
 * the shard runtime in a ThreadLoop until told to stop.
 *
 * postMessage carries control only — ready, stop, ring re-attachment after a peer
 * restarted, batched agent-error reports — never agent messages.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { ThreadLoop } from './thread-loop.ts'
import { loadRegistry } from '../host/load-agents.ts'
import { stateCodec } from './codec.ts'
import type { Mesh } from './mesh.ts'
import { openStore } from '../storage/open-store.ts'
import { LmdbStore } from '../storage/lmdb-store.ts'
import { guardLmdbCommitFailures } from '../storage/lmdb-commit-failure.ts'
import { ThreadReplicator } from '../storage/thread-replicator.ts'
import { SHARD_LOCAL } from '../../native-free-core/placement/shard-state.ts'
import type { Durability } from '../storage/lmdb-store.ts'
import { OutboxRedelivery } from '../storage/outbox-redelivery.ts'
import { LocalAcks } from '../storage/local-acks.ts'
import type { SendId } from '../../native-free-core/storage/store.ts'
import type { OutboxMode } from '../../native-free-core/runtime/ports.ts'
import { AgentErrorReporter } from '../observe/agent-error-reporter.ts'
import { TestClock } from '../time/test-clock.ts'
import { OffloadClient } from '../offload/offload-client.ts'
import { FRAME_TASK_DONE, nodeUtf8 } from './frame-codec.ts'
import type { QuotaSnapshot, QuotaUpdate } from '../tenancy/host-quotas.ts'
import { QuotaCounters } from '../../native-free-core/tenancy/quota-counters.ts'
import { QuotaDirectory, QuotaGate } from '../../native-free-core/tenancy/quota-gate.ts'
import type { AgentErrorReport } from '../observe/agent-error-reporter.ts'
import { inspectOnThread } from './inspect-agent.ts'
import type { ThreadInspection } from './inspect-agent.ts'
import { enterNative, leftNative, startedNative } from './init-phase.ts'

export interface WorkerData {
  readonly index: number
  readonly agents: string
  readonly fingerprint: string
  readonly mesh: Mesh
  readonly maxMessageBytes: number
  readonly dataDir: string | undefined
  readonly durability: Durability
  /** Durability 'os': the background flush's period, ms. */
  readonly flushIntervalMs: number
  /** Int32 word: number of 'agent-error' listeners on the host (reports are skipped at 0). */
  readonly listeners: SharedArrayBuffer
  /** A TestClock's buffer (tests), or null for `performance.now()`. */
  readonly clock: SharedArrayBuffer | null
  /** How durable sends are applied once ('dedup' on one host only as a test hook, see LocalAcks). */
  readonly outbox: OutboxMode
  /** The host has an offload pool (on the main thread). */
  readonly offload: boolean
  /** The quota directory and counter chunks as they were when the worker was spawned. */
  readonly quotas: QuotaSnapshot
  /** Cluster with replicas: every commit waits for the main thread to replicate its journal (thread-replicator.ts). */
  readonly replicate: boolean
  /**
   * The host's known-stateless shards (LmdbStore.findStatelessShards), the same bytes for
   * every worker and every replacement of one: a write by any thread clears its shard's.
   */
  readonly stateless: SharedArrayBuffer | null
  /** Int32 word: where this worker's start is, so the host never terminates it inside LMDB's native code (init-phase.ts). */
  readonly init: SharedArrayBuffer
}

export type ControlMessage =
  | { readonly type: 'attach', readonly peer: number, readonly out: SharedArrayBuffer | null, readonly in: SharedArrayBuffer | null }
  | { readonly type: 'stop' }
  | ({ readonly type: 'quota', readonly seq: number } & QuotaUpdate)
  /**
   * Ids starting with `prefix` that the main thread cannot read from LMDB itself: resident
   * agents never committed or kept in memory only, plus, without LMDB, this thread's
   * memory store. Answered with 'listed'.
   */
  | { readonly type: 'list', readonly req: number, readonly prefix: string }
  /** Read-only look at one agent this thread owns (inspect-agent.ts). Answered with 'inspected'. */
  | { readonly type: 'inspect', readonly req: number, readonly id: string, readonly hash: number, readonly typeIdx: number, readonly limit: number }

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'stopped' }
  | { readonly type: 'agent-errors', readonly errors: readonly AgentErrorReport[], readonly dropped: number }
  | { readonly type: 'quota-ack', readonly seq: number }
  | { readonly type: 'listed', readonly req: number, readonly ids: readonly string[] }
  | { readonly type: 'inspected', readonly req: number, readonly result: ThreadInspection }

// a failed LMDB commit is the engine's to handle (its callers get a StorageError), not a
// reason for this thread to end (lmdb-commit-failure.ts)
guardLmdbCommitFailures()

const data = workerData as WorkerData
const port = parentPort!
// the static imports above have loaded lmdb-js's addon: until the store is opened, a
// termination lands in JavaScript only
const initPhase = new Int32Array(data.init)
leftNative(initPhase)
const post = (m: WorkerMessage): void => port.postMessage(m)

const registry = await loadRegistry(data.agents)
if (registry.fingerprint() !== data.fingerprint) {
  throw new Error(`worker ${data.index} loaded different agent definitions than the main thread: ${registry.fingerprint()} vs ${data.fingerprint}`)
}

const reporter = new AgentErrorReporter(new Int32Array(data.listeners), (errors, dropped) => post({ type: 'agent-errors', errors, dropped }))
enterNative(initPhase)
const store = openStore(data.dataDir, data.durability, data.flushIntervalMs)
startedNative(initPhase)
if (data.stateless !== null && store instanceof LmdbStore) store.shareStateless(data.stateless)
let replicator: ThreadReplicator | null = null
if (data.replicate && store instanceof LmdbStore) store.replicateWith((journal) => replicator!.replicate(journal), (journal) => replicator!.lost(journal))
const quotaDirectory = new QuotaDirectory()
for (const [quota, slot, limit] of data.quotas.entries) quotaDirectory.set(quota, slot, limit)
const quotaCounters = new QuotaCounters(data.mesh.threads, data.quotas.chunks)
// offload tasks travel on the loop's rings: the client is made with the runtime, once the loop exists
let offload: OffloadClient | null = null
const loop = new ThreadLoop({
  index: data.index,
  mesh: data.mesh,
  maxMessageBytes: data.maxMessageBytes,
  onAgentError: (id: string, method: string, error: WireError) => reporter.report(id, method, error),
  onResult: (kind, id, ok, value) => { if (kind === FRAME_TASK_DONE) offload?.settle(id, ok, value) },
  onControl: (from, token, msg) => {
    if (msg.op !== 'commits') {
      replicator?.answered(token, msg)
      return
    }
    // the main thread's barrier before it reads a range for a replica's snapshot
    const done = (): void => {
      loop.sendControl(from, token, { op: 'committed' })
      loop.wake()
    }
    if (store instanceof LmdbStore) store.localCommits().then(done, done)
    else done()
  },
  // dedup on one host (a test hook) acknowledges here; a cluster's main thread does it (the loop reports to it)
  ...(data.mesh.shardStates === null ? { onApplied: (id: string, hash: number, send: SendId) => acks?.applied(id, hash, send) } : {}),
  runtime: (loop) => {
    const client = offload = data.offload ? new OffloadClient(loop) : null
    return new ShardRuntime({
      registry,
      store,
      codec: stateCodec,
      output: loop,
      decodeUtf8: nodeUtf8,
      maxMessageBytes: data.maxMessageBytes,
      quotas: new QuotaGate(quotaDirectory, quotaCounters, data.index),
      outbox: data.outbox,
      ...(data.clock !== null ? { clock: TestClock.reader(data.clock) } : {}),
      ...(client !== null ? { offload: (name: string, input: unknown) => client.run(name, input) } : {}),
      ...(data.mesh.shardStates !== null ? { shardStates: new Uint8Array(data.mesh.shardStates) } : {})
    })
  }
})
const runtime = loop.runtime!
if (data.replicate) {
  // half a frame: a journal piece and its control frame's envelope fit the ring's frame limit
  replicator = new ThreadReplicator((token, msg) => {
    loop.sendControl(0, token, msg)
    loop.wake()
  }, Math.max(1024, data.maxMessageBytes >> 1))
}
// in a cluster, only the sends of senders served here: a replica's copy of another host's
// outbox, or a stale range a returning host no longer serves, is not this host's to send
const shardStates = data.mesh.shardStates === null ? null : new Uint8Array(data.mesh.shardStates)
const redelivery = store.durable
  ? new OutboxRedelivery(runtime, store, (hash) => loop.ownerOf(hash) === data.index, () => loop.wake(),
    shardStates === null ? undefined : (shard) => shardStates[shard] === SHARD_LOCAL,
    loop.unreleasedSends === null ? undefined : { unreleased: loop.unreleasedSends, pastServingDeadline: () => loop.pastServingDeadline() })
  : null
const acks = store.durable && data.outbox === 'dedup' && data.mesh.shardStates === null ? new LocalAcks(runtime, store, () => loop.wake()) : null

port.on('message', (m: ControlMessage) => {
  switch (m.type) {
    case 'attach':
      loop.reattach(m.peer, m.out, m.in)
      break
    case 'stop':
      void stop()
      break
    case 'quota':
      if (m.chunk !== null && !quotaCounters.has(m.slot)) quotaCounters.attach(m.chunk)
      quotaDirectory.set(m.quota, m.slot, m.limit)
      post({ type: 'quota-ack', seq: m.seq })
      break
    case 'list':
      post({ type: 'listed', req: m.req, ids: threadIds(m.prefix) })
      break
    case 'inspect':
      post({ type: 'inspected', req: m.req, result: inspectOnThread(runtime, m.id, m.hash, m.typeIdx, m.limit) })
      break
  }
})

function threadIds (prefix: string): string[] {
  const resident = runtime.residentIds(prefix)
  return store.durable ? resident : [...store.ids(prefix), ...resident]
}

async function stop (): Promise<void> {
  redelivery?.stop()
  await loop.drainAndStop()
  await acks?.finish()
  await store.close()
  reporter.flush()
  post({ type: 'stopped' })
  port.close()
}

loop.start()
acks?.start((shard) => loop.ownerOfShard(shard) === data.index)
redelivery?.start()
// the sends just redelivered are an open batch: say so before 'ready', or a host closing
// at once could find this thread quiet before its first pass and stop it mid-chain
loop.publishStats()
post({ type: 'ready' })
