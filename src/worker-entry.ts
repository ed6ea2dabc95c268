/**
 * Entry point of a worker thread: import the agents module, attach to the mesh, run
 * the shard runtime in a ThreadLoop until told to stop.
 *
 * postMessage carries control only — ready, stop, ring re-attachment after a peer
 * restarted, batched agent-error reports — never agent messages.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { ShardRuntime } from '../native-free-core/shard-runtime.ts'
import type { WireError } from '../native-free-core/errors.ts'
import { ThreadLoop } from './thread-loop.ts'
import { loadRegistry } from './load-agents.ts'
import { stateCodec } from './codec.ts'
import type { Mesh } from './mesh.ts'
import { openStore } from './open-store.ts'
import type { Durability } from './lmdb-store.ts'
import { OutboxRedelivery } from './outbox-redelivery.ts'
import { AgentErrorReporter } from './agent-error-reporter.ts'
import type { AgentErrorReport } from './agent-error-reporter.ts'

export interface WorkerData {
  readonly index: number
  readonly agents: string
  readonly fingerprint: string
  readonly mesh: Mesh
  readonly maxMessageBytes: number
  readonly dataDir: string | undefined
  readonly durability: Durability
  /** Int32 word: number of 'agent-error' listeners on the host (reports are skipped at 0). */
  readonly listeners: SharedArrayBuffer
}

export type ControlMessage =
  | { readonly type: 'attach', readonly peer: number, readonly out: SharedArrayBuffer | null, readonly in: SharedArrayBuffer | null }
  | { readonly type: 'stop' }
  /**
   * Ids starting with `prefix` that the main thread cannot read from LMDB itself: resident
   * agents never committed or kept in memory only, plus, without LMDB, this thread's
   * memory store. Answered with 'listed'.
   */
  | { readonly type: 'list', readonly req: number, readonly prefix: string }

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'stopped' }
  | { readonly type: 'agent-errors', readonly errors: readonly AgentErrorReport[], readonly dropped: number }
  | { readonly type: 'listed', readonly req: number, readonly ids: readonly string[] }

const data = workerData as WorkerData
const port = parentPort!
const post = (m: WorkerMessage): void => port.postMessage(m)

const registry = await loadRegistry(data.agents)
if (registry.fingerprint() !== data.fingerprint) {
  throw new Error(`worker ${data.index} loaded different agent definitions than the main thread: ${registry.fingerprint()} vs ${data.fingerprint}`)
}

const reporter = new AgentErrorReporter(new Int32Array(data.listeners), (errors, dropped) => post({ type: 'agent-errors', errors, dropped }))
const loop = new ThreadLoop({
  index: data.index,
  mesh: data.mesh,
  maxMessageBytes: data.maxMessageBytes,
  onAgentError: (id: string, method: string, error: WireError) => reporter.report(id, method, error)
})
const store = openStore(data.dataDir, data.durability)
const runtime = new ShardRuntime({ registry, store, codec: stateCodec, output: loop, maxMessageBytes: data.maxMessageBytes })
loop.runtime = runtime
const redelivery = store.durable ? new OutboxRedelivery(runtime, store, (hash) => loop.ownerOf(hash) === data.index, () => loop.wake()) : null

port.on('message', (m: ControlMessage) => {
  switch (m.type) {
    case 'attach':
      loop.reattach(m.peer, m.out, m.in)
      break
    case 'stop':
      void stop()
      break
    case 'list':
      post({ type: 'listed', req: m.req, ids: threadIds(m.prefix) })
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
  await store.close()
  reporter.flush()
  post({ type: 'stopped' })
  port.close()
}

loop.start()
redelivery?.start()
post({ type: 'ready' })
