/**
 * What a world shows its users (world-view.ts): committed states and storage read from
 * the `SimStore`, the resident states of `durable: false` agents read from the runtime's
 * table, and the messages in flight — each a copy through the codec, as a host would
 * hand them out, so an invariant can never change the world it looks at.
 */
import { idOf, parseId } from '../agent/agent-id.ts'
import type { AgentAddress, AgentId } from '../agent/agent-id.ts'
import type { AgentRegistry } from '../agent/registry.ts'
import { hashId } from '../placement/hash.ts'
import { decodeSimValue, simCodec } from './codec.ts'
import type { Network } from './network.ts'
import type { SimRuntime } from './sim-runtime.ts'
import type { SimStore } from './sim-store.ts'
import type { InFlightMessage } from './world-view.ts'

export class WorldReadModel {
  private readonly registry: AgentRegistry
  private readonly store: SimStore
  private readonly runtime: SimRuntime
  private readonly network: Network
  /** Some type is `durable: false`: its agents live only in the runtime's table. */
  private readonly hasVolatile: boolean

  constructor (registry: AgentRegistry, store: SimStore, runtime: SimRuntime, network: Network, hasVolatile: boolean) {
    this.registry = registry
    this.store = store
    this.runtime = runtime
    this.network = network
    this.hasVolatile = hasVolatile
  }

  state<S = any> (address: AgentAddress): S {
    const id = idOf(address)
    const info = this.registry.require(address.type)
    if (info.def.durable === false) {
      const cell = this.runtime.table.get(id, hashId(id))
      if (cell !== undefined) return decodeSimValue(simCodec.encode(cell.state)) as S
    } else {
      const bytes = this.store.getState(id)
      if (bytes !== undefined) return decodeSimValue(bytes) as S
    }
    return info.def.initial(address.key) as S
  }

  storage<V = unknown> (address: AgentAddress, options: { readonly prefix?: string } = {}): Array<[string, V]> {
    const id = idOf(address)
    this.registry.require(address.type)
    const out: Array<[string, V]> = []
    for (const [key, bytes] of this.store.listStorage(id, options.prefix ?? '', undefined)) out.push([key, decodeSimValue(bytes) as V])
    return out
  }

  agents (filter: { readonly type?: string, readonly quota?: string } = {}): AgentId[] {
    const ids = new Set(this.store.ids(''))
    if (this.hasVolatile) for (const cell of this.runtime.table.values()) if (this.runtime.infoOf(cell).def.durable === false) ids.add(this.runtime.idOf(cell))
    return [...ids].sort().map(parseId)
      .filter((a) => (filter.type === undefined || a.type === filter.type) && (filter.quota === undefined || a.quota === filter.quota))
  }

  inFlight (): InFlightMessage[] {
    return this.network.all().map((m) => ({
      seq: m.seq,
      from: m.from === null ? null : parseId(m.from),
      to: parseId(m.to),
      method: m.method,
      payload: decodeSimValue(m.bytes)
    }))
  }
}
