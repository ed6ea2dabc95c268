/**
 * From a ref to a frame on the ring of the thread that owns the agent: `host.ref` builds
 * the handle (id and hash computed once), and `call`, `cast` and `follow` resolve the
 * method and write the message. The ref's target: every call and cast comes through here.
 */
import { DEFAULT_QUOTA, MAX_ID_BYTES, checkKey, checkName, idString, utf8Length } from '../../native-free-core/agent/agent-id.ts'
import { isAgentDefinition } from '../../native-free-core/agent/define-agent.ts'
import type { AgentDefinition } from '../../native-free-core/agent/define-agent.ts'
import { MSG_CALL, MSG_CAST, MSG_FOLLOW } from '../../native-free-core/agent/envelope.ts'
import type { AgentRegistry, MethodInfo, TypeInfo } from '../../native-free-core/agent/registry.ts'
import { EncodeError, HostClosedError, InvalidArgumentError, ShoalError, UnknownQuotaError, errorFromWire, messageOf } from '../../native-free-core/errors.ts'
import { hashAfter, prefixState } from '../../native-free-core/placement/hash.ts'
import type { HostQuotas } from '../tenancy/host-quotas.ts'
import type { ThreadLoop } from '../thread/thread-loop.ts'
import { idPrefixBytes } from '../thread/frame-codec.ts'
import type { IdPrefixBytes } from '../thread/frame-codec.ts'
import type { Gateway } from './gateway.ts'
import { AgentRef } from './agent-ref.ts'
import type { RefTarget } from './agent-ref.ts'
import type { RefAddress } from './ref-address.ts'
import type { FollowOptions, Follows, Subscription } from './follow.ts'
import type { HostLifecycle } from './lifecycle.ts'
import type { CallOptions, PendingCalls } from './pending-calls.ts'

export interface RefOptions {
  readonly quota?: string
}

export interface RouterParts {
  readonly registry: AgentRegistry
  readonly loop: ThreadLoop
  readonly pending: PendingCalls
  readonly quotas: HostQuotas
  readonly life: HostLifecycle
  /** The incarnation of a worker thread (0 for the main thread): a call fails if it dies. */
  epochOf (thread: number): number
  /** The host's follows (made after the router: they subscribe through it). */
  follows (): Follows
  /** The cluster's gateway, when a router plugin claimed it. */
  gateway (): Gateway | null
}

interface IdPrefix {
  readonly quota: string
  readonly state: number
  readonly bytes: IdPrefixBytes
}

export class Router implements RefTarget {
  private readonly registry: AgentRegistry
  private readonly loop: ThreadLoop
  private readonly pending: PendingCalls
  private readonly quotas: HostQuotas
  private readonly life: HostLifecycle
  private readonly parts: RouterParts
  private readonly prefixes = new Map<string, IdPrefix[]>()
  /** The default quota's prefixes, without the Map probe (nearly every ref's quota). */
  private readonly defaultPrefixes: IdPrefix[]
  /** The last type `ref` was given (a definition or a name) and what it resolved to: a loop of refs names one type. */
  private lastType: string | AgentDefinition | null = null
  private lastInfo: TypeInfo | null = null
  /** The last method `resolve` looked up in a type's Map (a loop of one-shot refs calls one method). */
  private lastMethodType: TypeInfo | null = null
  private lastMethodName = ''
  private lastMethodInfo: MethodInfo | null = null

  constructor (parts: RouterParts) {
    this.parts = parts
    this.registry = parts.registry
    this.loop = parts.loop
    this.pending = parts.pending
    this.quotas = parts.quotas
    this.life = parts.life
    this.defaultPrefixes = this.prefixesOf(DEFAULT_QUOTA)
  }

  /**
   * Kept small on purpose (the rare cases are in `typeOf`, `quotaPrefix`, `checkIdLength`):
   * at 432 bytes of bytecode V8 stopped inlining into a caller's loop here; small, `ref`,
   * `cast` and the AgentRef and RefAddress constructors are inlined (bench/RESULTS.md,
   * branch mainref). The two objects are still allocated: escape analysis does not drop them.
   */
  ref (type: string | AgentDefinition, key: string, options?: RefOptions): AgentRef {
    // the registry never changes and definitions are frozen: the same argument resolves to the same type
    const info = type === this.lastType ? this.lastInfo! : this.typeOf(type)
    checkKey(key)
    const prefix = options?.quota === undefined ? this.defaultPrefixes[info.index]! : this.quotaPrefix(options.quota, info.index)
    if (prefix.bytes.bytes.length + key.length * 3 > MAX_ID_BYTES) checkIdLength(prefix, key, info)
    // the hash as an int32 (the same 32 bits; frames and shardOf read it either way): a uint32 ≥ 2^31 is no small
    // integer, and the ref's field would hold every hash in a heap number of its own
    return new AgentRef(this, info, prefix.quota, key, prefix.bytes, hashAfter(prefix.state, key) | 0)
  }

  private typeOf (type: string | AgentDefinition): TypeInfo {
    // a registered type name is valid by construction: the name check only runs to explain a miss
    const info = this.registry.get(isAgentDefinition(type) ? type.type : type) ?? this.registry.require(checkName('type', type))
    this.lastType = type
    this.lastInfo = info
    return info
  }

  private quotaPrefix (name: string, typeIndex: number): IdPrefix {
    const quota = checkName('quota', name)
    if (quota !== DEFAULT_QUOTA && !this.quotas.has(quota)) throw unknownQuota(quota)
    return this.prefixOf(quota, typeIndex)
  }

  /**
   * The id prefix `quota \x1f type \x1f` of a quota and type index: its FNV state (a new
   * ref hashes only its key) and its UTF-8 bytes (a new ref's first frame copies them and
   * writes the key after them: no id string is built). Cached per quota (quota strings
   * are usually the same objects, so the Map lookup reuses their cached V8 hash).
   */
  private prefixOf (quota: string, typeIndex: number): IdPrefix {
    if (quota === DEFAULT_QUOTA) return this.defaultPrefixes[typeIndex]!
    let prefixes = this.prefixes.get(quota)
    if (prefixes === undefined) {
      prefixes = this.prefixesOf(quota)
      if (this.prefixes.size < 10_000) this.prefixes.set(quota, prefixes)
    }
    return prefixes[typeIndex]!
  }

  private prefixesOf (quota: string): IdPrefix[] {
    return this.registry.types.map((t) => {
      const p = idString(quota, t.type, '')
      return { quota, state: prefixState(p), bytes: idPrefixBytes(new Uint8Array(Buffer.from(p, 'utf8'))) }
    })
  }

  /** @internal RefTarget */
  call (to: RefAddress, method: string, payload: unknown, options: CallOptions | undefined): Promise<unknown> {
    if (this.life.stopping) return Promise.reject(new HostClosedError())
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
    const gateway = this.parts.gateway()
    // a shard served by another host: no home thread involved (a dropped link fails the call, not a worker)
    const thread = gateway !== null && gateway.isDirect(to.hash) ? -1 : loop.ownerOf(to.hash)
    const promise = this.pending.add(thread, thread < 0 ? 0 : this.parts.epochOf(thread), to.info.type, method, options)
    const callId = this.pending.lastId
    try {
      if (thread < 0) gateway!.sendDirect(MSG_CALL, to.id, to.idBytes, to.hash, to.info.index, m.index, payload, callId)
      // the main thread has a ring to every thread that owns agents
      else if (to.idBytes !== null) loop.sendMessage(thread, MSG_CALL, to.id, to.idBytes, to.hash, to.info.index, m.index, payload, callId)
      else loop.sendMessageTo(thread, MSG_CALL, to.prefix, to.key, to.hash, to.info.index, m.index, payload, callId)
    } catch (err) {
      this.pending.fail(callId, err instanceof ShoalError ? err : new EncodeError(`${to.info.type}.${method}: the message could not be written: ${messageOf(err)}`))
    }
    return promise
  }

  /** @internal RefTarget */
  cast (to: RefAddress, method: string, payload: unknown): void {
    if (this.life.stopping) throw new HostClosedError()
    const m = this.resolve(to, method)
    const gateway = this.parts.gateway()
    if (gateway !== null && castDirect(gateway, to, m, payload)) return
    const loop = this.loop
    if (to.idBytes !== null) loop.sendMessage(loop.ownerOf(to.hash), MSG_CAST, to.id, to.idBytes, to.hash, to.info.index, m.index, payload, 0)
    else loop.sendMessageTo(loop.ownerOf(to.hash), MSG_CAST, to.prefix, to.key, to.hash, to.info.index, m.index, payload, 0)
  }

  /** @internal RefTarget */
  follow (to: RefAddress, options: FollowOptions | undefined): AsyncIterableIterator<unknown> {
    if (this.life.stopping) throw new HostClosedError()
    if (to.quota !== DEFAULT_QUOTA && !this.quotas.has(to.quota)) throw unknownQuota(to.quota)
    return this.parts.follows().open(to, options)
  }

  /** MSG_FOLLOW / MSG_UNFOLLOW to the agent's owner; a follow id travels as the call id. */
  sendFollow (sub: Subscription<unknown>, kind: number): void {
    const loop = this.loop
    const to = sub.to
    const thread = kind === MSG_FOLLOW ? loop.ownerOf(to.hash) : sub.thread
    if (kind === MSG_FOLLOW) sub.thread = thread
    // no ring: the thread followed is gone, and its subscriptions with it
    loop.sendMessage(thread, kind, to.id, to.idBytes, to.hash, to.info.index, 0, undefined, sub.followId)
  }

  /**
   * The method of a ref's type; from the second message on, the ref keeps its id's bytes.
   * Small, as `ref` (the rest in helpers): a ref used once looks its method up in the
   * router's last one, not in its type's Map.
   */
  private resolve (to: RefAddress, method: string): MethodInfo {
    if (to.quota !== DEFAULT_QUOTA) this.checkQuota(to.quota)
    if (++to.uses === 2) keepIdBytes(to)
    let m = to.lastMethodInfo
    if (m !== null && method === to.lastMethod) return m
    m = to.info === this.lastMethodType && method === this.lastMethodName ? this.lastMethodInfo! : this.methodOf(to.info, method)
    to.lastMethod = method
    to.lastMethodInfo = m
    return m
  }

  private methodOf (info: TypeInfo, method: string): MethodInfo {
    const m = this.registry.method(info, method)
    this.lastMethodType = info
    this.lastMethodName = method
    this.lastMethodInfo = m
    return m
  }

  private checkQuota (quota: string): void {
    if (!this.quotas.has(quota)) throw unknownQuota(quota)
  }
}

/** From a ref's second message on, its id's UTF-8 bytes are copied into frames. */
function keepIdBytes (to: RefAddress): void {
  to.idBytes = Buffer.from(to.id, 'utf8')
}

/** A cast to a shard another host serves, sent there directly (out of `cast`, which stays small). */
function castDirect (gateway: Gateway, to: RefAddress, m: MethodInfo, payload: unknown): boolean {
  return gateway.isDirect(to.hash) && gateway.sendDirect(MSG_CAST, to.id, to.idBytes, to.hash, to.info.index, m.index, payload, 0)
}

/** A ref's id over MAX_ID_BYTES (the caller's quick test counts 3 bytes per UTF-16 unit: this counts them). */
function checkIdLength (prefix: IdPrefix, key: string, info: TypeInfo): void {
  if (prefix.bytes.bytes.length + utf8Length(key) > MAX_ID_BYTES) {
    throw new InvalidArgumentError(`agent id is longer than ${MAX_ID_BYTES} UTF-8 bytes`, { type: info.type, quota: prefix.quota })
  }
}

function unknownQuota (quota: string): UnknownQuotaError {
  return new UnknownQuotaError(`quota ${JSON.stringify(quota)} does not exist (create it with host.quotas.set)`, { quota })
}
