/**
 * `host.agents(filter)`: every agent that exists, once each — those in the store (an
 * LMDB range scan from the main thread) and those resident but not stored yet (activated
 * by a query, or `durable: false`), which only the thread that owns them knows.
 */
import { checkName, idString, kIdSeparator, parseId, typeOf } from '../../native-free-core/agent/agent-id.ts'
import type { AgentId } from '../../native-free-core/agent/agent-id.ts'
import type { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { HostClosedError, InvalidArgumentError } from '../../native-free-core/errors.ts'
import type { Store } from '../../native-free-core/storage/store.ts'
import type { ThreadLoop } from '../thread/thread-loop.ts'
import type { HostLifecycle } from './lifecycle.ts'
import type { WorkerSupervisor } from './workers.ts'
import type { AgentLister, AgentQuery } from './agent-query.ts'

export type { AgentLister, AgentQuery } from './agent-query.ts'

/** Which agents `host.agents()` lists: any quota and type unless given. */
export interface AgentFilter {
  readonly type?: string
  readonly quota?: string
}

export interface ListingParts {
  readonly registry: AgentRegistry
  /** The main thread's store (null: workers with memory stores). */
  readonly store: Store | null
  /** The main thread's loop, whose runtime owns every agent with `workers: 0`. */
  readonly loop: ThreadLoop
  readonly workers: WorkerSupervisor
  readonly life: HostLifecycle
}

export class AgentListing {
  private readonly parts: ListingParts
  private lister: AgentLister | null = null

  constructor (parts: ListingParts) {
    this.parts = parts
  }

  /** @internal PluginHost.listAgents: `host.agents()` lists through `lister` from now on. */
  replace (lister: AgentLister): void {
    if (this.lister !== null) throw new InvalidArgumentError('host.agents() is listed by a plugin already')
    this.lister = lister
  }

  /**
   * Every agent that exists, once each: those in the store (an LMDB range scan) and
   * those resident but not stored yet (activated by a query, or `durable: false`).
   * Agents created while the listing runs may or may not appear.
   */
  async * agents (filter: AgentFilter = {}): AsyncGenerator<AgentId, void, undefined> {
    if (this.parts.life.stopping) throw new HostClosedError()
    if (filter === null || typeof filter !== 'object') {
      throw new InvalidArgumentError(`host.agents(filter): filter must be an object { type?, quota? } (got ${String(filter)})`)
    }
    const type = filter.type === undefined ? undefined : this.parts.registry.require(checkName('type', filter.type)).type
    const quota = filter.quota === undefined ? undefined : checkName('quota', filter.quota)
    const prefix = quota === undefined ? '' : type === undefined ? quota + kIdSeparator : idString(quota, type, '')
    const query: AgentQuery = { prefix, type: type !== undefined && quota === undefined ? type : null }
    if (this.lister !== null) {
      for await (const id of this.lister(query)) yield parseId(id)
      return
    }
    const matches = (id: string): boolean => query.type === null || typeOf(id) === query.type
    // unsaved residents first: an id committed while the store is scanned is then yielded once, by the scan
    const unsaved = new Set<string>()
    for (const id of await this.unsavedIds(prefix)) if (matches(id)) unsaved.add(id)
    const store = this.parts.store
    if (store?.durable === true) {
      for (const id of store.ids(prefix)) {
        if (!matches(id)) continue
        unsaved.delete(id)
        yield parseId(id)
      }
    }
    for (const id of unsaved) yield parseId(id)
  }

  /**
   * Ids resident on this host that start with `prefix` and that its store may not hold
   * yet (never committed, or `durable: false`); with memory stores, every stored one too.
   */
  async unsavedIds (prefix: string): Promise<string[]> {
    const runtime = this.parts.loop.runtime
    if (runtime !== null) {
      // workers: 0 — the main thread owns every agent, and its store
      const store = this.parts.store!
      const resident = runtime.residentIds(prefix)
      return store.durable ? resident : [...store.ids(prefix), ...resident]
    }
    return this.parts.workers.residentIds(prefix)
  }
}
