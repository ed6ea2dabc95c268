/**
 * `host.ref(type, key)`: a typed handle on one agent. Cheap to create (the id's hash is
 * computed once, its string only if something asks for it), valid for the host's
 * lifetime, and serializable: inside a payload it travels as its plain address
 * `{ quota, type, key }`.
 */
import type { AgentAddress } from '../../native-free-core/agent/agent-id.ts'
import type { AgentDefinition, MethodName, PayloadOf, ReplyOf, StateOf } from '../../native-free-core/agent/define-agent.ts'
import type { TypeInfo } from '../../native-free-core/agent/registry.ts'
import { checkCallOptions } from './pending-calls.ts'
import type { CallOptions } from './pending-calls.ts'
import type { FollowOptions } from './follow.ts'
import { RefAddress } from './ref-address.ts'
import type { IdPrefixBytes } from '../thread/frame-codec.ts'

/** @internal What a ref needs from its host. */
export interface RefTarget {
  call (to: RefAddress, method: string, payload: unknown, options: CallOptions | undefined): Promise<unknown>
  cast (to: RefAddress, method: string, payload: unknown): void
  follow (to: RefAddress, options: FollowOptions | undefined): AsyncIterableIterator<unknown>
}

export class AgentRef<D extends AgentDefinition = AgentDefinition> implements AgentAddress {
  readonly quota: string
  readonly type: string
  readonly key: string
  readonly #target: RefTarget
  readonly #to: RefAddress

  /** @internal Use `host.ref(type, key)`. */
  constructor (target: RefTarget, info: TypeInfo, quota: string, key: string, prefix: IdPrefixBytes, hash: number) {
    this.quota = quota
    this.type = info.type
    this.key = key
    this.#target = target
    this.#to = new RefAddress(prefix, key, hash, info, quota)
  }

  /**
   * Run a command or query and wait for its reply (a command's reply waits for its
   * commit). Bad `options` reject with InvalidArgumentError, sending nothing.
   */
  call<M extends MethodName<D>> (method: M, payload?: PayloadOf<D, M>, options?: CallOptions): Promise<ReplyOf<D, M>> {
    if (options !== undefined) {
      const bad = checkCallOptions(options)
      if (bad !== null) return Promise.reject(bad)
    }
    return this.#target.call(this.#to, method, payload, options) as Promise<ReplyOf<D, M>>
  }

  /** Fire and forget. Throws at once for bad input (unknown method, unencodable or too large payload). */
  cast<M extends MethodName<D>> (method: M, payload?: PayloadOf<D, M>): void {
    this.#target.cast(this.#to, method, payload)
  }

  /**
   * The agent's committed states as they happen, the current one first (Pachyderm's
   * follow). Leaving the `for await` loop unsubscribes. Does not activate the agent.
   */
  follow (options?: FollowOptions): AsyncIterableIterator<StateOf<D>> {
    return this.#target.follow(this.#to, options) as AsyncIterableIterator<StateOf<D>>
  }

  toJSON (): AgentAddress {
    return { quota: this.quota, type: this.type, key: this.key }
  }
}
