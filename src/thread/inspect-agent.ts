/**
 * `host.inspect(...)`: what one agent looks like on the thread that owns it — resident or
 * not, its committed state, its storage keys and its pending reminders — read without
 * delivering anything: inspecting never activates, never takes a rate-limit token or a
 * quota unit, never runs a handler (the dashboard's agent lookup is read-only by design).
 *
 * It runs on the owning thread (a worker answers a control message; with `workers: 0`
 * the main thread itself), because only that thread knows its resident agents, and
 * because without `dataDir` the committed states live in that thread's memory store.
 * The reads are the store's committed records, so a turn that has not committed yet is
 * not seen — the same view a restart would have.
 */
import type { Store } from '../../native-free-core/storage/store.ts'
import type { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import { kBusy } from '../../native-free-core/runtime/cell.ts'
import { shardOf } from '../../native-free-core/placement/hash.ts'
import { decodeReminder } from '../../native-free-core/time/agent-reminders.ts'
import { messageOf } from '../../native-free-core/errors.ts'
import type { AgentId } from '../../native-free-core/agent/agent-id.ts'
import { stateCodec } from './codec.ts'

export interface AgentReminderInfo {
  readonly name: string
  /** When it is due next, epoch ms. */
  readonly dueAt: number
  /** Its period, ms; 0 for a one-shot reminder. */
  readonly everyMs: number
}

/** What one thread knows of an agent it owns. */
export interface ThreadInspection {
  /** Resident in the thread's agent table (activated and not passivated since). */
  readonly active: boolean
  /** Inside an async turn now. */
  readonly busy: boolean
  /**
   * Where `state` comes from: `'store'` — the last committed state; `'memory'` — a
   * `durable: false` type has none stored, this is its resident state (read between two
   * turns); null — there is none (never created, deleted, or a memory-only agent that
   * is not resident or is in a turn).
   */
  readonly stateFrom: 'store' | 'memory' | null
  readonly state: unknown
  /** Encoded size of the stored state, bytes (0 without one). */
  readonly stateBytes: number
  /** The first committed `ctx.storage` keys, in byte order. */
  readonly storageKeys: readonly string[]
  /** More keys exist than `storageKeys` holds. */
  readonly moreStorageKeys: boolean
  /** Committed reminders, by name. */
  readonly reminders: readonly AgentReminderInfo[]
  /** What could not be read (a stored state that no longer decodes, a store error), or null. */
  readonly error: string | null
}

export interface AgentInspection extends ThreadInspection {
  readonly id: AgentId
  /** Placement shard (0..4095): the same on every host. */
  readonly shard: number
  /** The thread that owns the agent on this host: a worker (1..workers), or 0 with `workers: 0`. */
  readonly thread: number
  /** This host serves the agent's shard now (always true without the cluster plugin). */
  readonly served: boolean
}

/** Inspect agent `id` (hash `hash`, type index `typeIdx`) on this thread; at most `limit` storage keys. */
export function inspectOnThread (runtime: ShardRuntime, id: string, hash: number, typeIdx: number, limit: number): ThreadInspection {
  const store: Store | null = runtime.store
  const cell = runtime.residentCell(id, hash)
  const busy = cell !== undefined && (cell.flags & kBusy) !== 0
  const persistent = store !== null && runtime.registry.types[typeIdx]?.def.durable !== false
  let stateFrom: ThreadInspection['stateFrom'] = null
  let state: unknown
  let stateBytes = 0
  const storageKeys: string[] = []
  let moreStorageKeys = false
  const reminders: AgentReminderInfo[] = []
  let error: string | null = null
  try {
    if (persistent) {
      const bytes = store.getState(id)
      if (bytes !== undefined) {
        stateBytes = bytes.length
        stateFrom = 'store'
        try {
          state = stateCodec.decode(bytes)
        } catch (err) {
          error = `the stored state does not decode: ${messageOf(err)}`
        }
      }
      for (const [key] of store.listStorage(id, '', undefined)) {
        if (storageKeys.length === limit) { moreStorageKeys = true; break }
        storageKeys.push(key)
      }
      for (const [owner, name, bytes] of store.reminders(shardOf(hash))) {
        if (owner !== id) continue
        const r = decodeReminder(bytes)
        if (r !== null) reminders.push({ name, dueAt: r.due, everyMs: r.every })
      }
    } else if (cell !== undefined && !busy) {
      stateFrom = 'memory'
      state = cell.state
    }
  } catch (err) {
    error ??= `reading the store failed: ${messageOf(err)}`
  }
  return { active: cell !== undefined, busy, stateFrom, state, stateBytes, storageKeys, moreStorageKeys, reminders, error }
}
