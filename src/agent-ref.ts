/**
 * `host.ref(type, key)`: a typed handle on one agent. Cheap to create (the id string
 * and its hash are computed once), valid for the host's lifetime, and serializable:
 * inside a payload it travels as its plain address `{ quota, type, key }`.
 */
import type { AgentAddress } from '../native-free-core/agent-id.ts'
import type { AgentDefinition, MethodName, PayloadOf, ReplyOf } from '../native-free-core/define-agent.ts'
import type { TypeInfo } from '../native-free-core/registry.ts'
import type { CallOptions } from './pending-calls.ts'

/** What a ref needs from its host. */
export interface RefTarget {
  call (id: string, hash: number, info: TypeInfo, method: string, payload: unknown, options: CallOptions | undefined): Promise<unknown>
  cast (id: string, hash: number, info: TypeInfo, method: string, payload: unknown): void
}

export class AgentRef<D extends AgentDefinition = AgentDefinition> implements AgentAddress {
  readonly quota: string
  readonly type: string
  readonly key: string
  readonly #target: RefTarget
  readonly #id: string
  readonly #hash: number
  readonly #info: TypeInfo

  constructor (target: RefTarget, info: TypeInfo, quota: string, key: string, id: string, hash: number) {
    this.quota = quota
    this.type = info.type
    this.key = key
    this.#target = target
    this.#info = info
    this.#id = id
    this.#hash = hash
  }

  /** Run a command or query and wait for its reply (a command's reply waits for its commit). */
  call<M extends MethodName<D>> (method: M, payload?: PayloadOf<D, M>, options?: CallOptions): Promise<ReplyOf<D, M>> {
    return this.#target.call(this.#id, this.#hash, this.#info, method, payload, options) as Promise<ReplyOf<D, M>>
  }

  /** Fire and forget. Throws at once for bad input (unknown method, unencodable or too large payload). */
  cast<M extends MethodName<D>> (method: M, payload?: PayloadOf<D, M>): void {
    this.#target.cast(this.#id, this.#hash, this.#info, method, payload)
  }

  toJSON (): AgentAddress {
    return { quota: this.quota, type: this.type, key: this.key }
  }
}
