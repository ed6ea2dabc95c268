/**
 * `ref.follow()` on the thread that follows (the main thread): an async iterable of an
 * agent's committed states, the current one first (Pachyderm's `follow`).
 *
 *   main ──MSG_FOLLOW(id, followId)──▶ owner worker      subscribe; the current state
 *        ◀──FRAME_STATE(followId)─────                    comes back at once, then one
 *        ◀──FRAME_STATE(followId)─────                    frame per committed batch that
 *        ──MSG_UNFOLLOW(id, followId)─▶                   changed the agent
 *
 * States are sent by the owner only after their batch has committed (the output gate),
 * on the rings like every message — never one postMessage per state. Group commit
 * coalesces: a follower sees every *committed* state, not each turn's (many commands in
 * one batch commit one state). Leaving the `for await` loop (break, return, throw) calls
 * `return()`, which unsubscribes: the worker stops sending.
 *
 * Gotchas:
 *   - A follower that does not keep up buffers the states it has not read yet (no
 *     state is ever dropped or merged here). Read promptly, or end the loop.
 *   - When the owning worker restarts, the subscription is renewed on the new worker,
 *     which sends the agent's current state again — it may repeat the last one seen.
 *   - A state larger than maxMessageBytes cannot travel: the iterator throws
 *     MessageTooLargeError and the subscription ends.
 *   - `host.close()` ends every follow loop normally (`done: true`).
 */
import { ShardUnavailableError, errorFromWire } from '../../native-free-core/errors.ts'
import type { ShoalError, WireError } from '../../native-free-core/errors.ts'
import type { RefAddress } from './ref-address.ts'

/** How long a follow waits before subscribing again where its agent went. */
const RENEW_DELAY_MS = 20

export interface FollowOptions {
  /** Ends the iteration (as `return()` does) when it fires. */
  readonly signal?: AbortSignal
}

/** What a subscription needs from its host: to send MSG_FOLLOW / MSG_UNFOLLOW to the owner. */
export interface FollowTransport {
  subscribe (sub: Subscription<unknown>): void
  unsubscribe (sub: Subscription<unknown>): void
}

export class Subscription<S> implements AsyncIterableIterator<S> {
  readonly followId: number
  readonly to: RefAddress
  /** The worker the subscription was sent to (the agent's owner then). */
  thread = -1
  private readonly registry: Follows
  private queue: S[] = []
  private head = 0
  private waiter: { resolve: (r: IteratorResult<S>) => void, reject: (e: unknown) => void } | null = null
  private failure: ShoalError | null = null
  private ended = false
  private readonly signal: AbortSignal | null
  private readonly onAbort: (() => void) | null

  constructor (registry: Follows, followId: number, to: RefAddress, options: FollowOptions | undefined) {
    this.registry = registry
    this.followId = followId
    this.to = to
    this.signal = options?.signal ?? null
    this.onAbort = this.signal === null ? null : () => { void this.return() }
    this.signal?.addEventListener('abort', this.onAbort!, { once: true })
  }

  [Symbol.asyncIterator] (): this {
    return this
  }

  next (): Promise<IteratorResult<S>> {
    if (this.head < this.queue.length) return Promise.resolve({ value: this.shift(), done: false })
    if (this.failure !== null) {
      const failure = this.failure
      this.failure = null
      return Promise.reject(failure)
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve, reject) => { this.waiter = { resolve, reject } })
  }

  /** Leave the loop: unsubscribe (the owner stops sending) and end. */
  return (): Promise<IteratorResult<S>> {
    this.end(true)
    return Promise.resolve({ value: undefined, done: true })
  }

  /** @internal a committed state arrived */
  push (value: S): void {
    if (this.ended) return
    if (this.waiter !== null) {
      const w = this.waiter
      this.waiter = null
      w.resolve({ value, done: false })
    } else {
      this.queue.push(value)
    }
  }

  /** @internal the subscription failed on the owner's side: throw after the states already received */
  fail (error: ShoalError): void {
    if (this.ended) return
    // a waiter exists only while nothing is queued
    const w = this.waiter
    this.waiter = null
    if (w === null) this.failure = error
    this.end(true)
    w?.reject(error)
  }

  /** @internal end without a word to the owner (`unsubscribe` false: the host is closing) */
  end (unsubscribe: boolean): void {
    if (this.ended) return
    this.ended = true
    if (this.onAbort !== null) this.signal!.removeEventListener('abort', this.onAbort)
    this.registry.forget(this as unknown as Subscription<unknown>, unsubscribe)
    if (this.waiter !== null && this.head >= this.queue.length) {
      const w = this.waiter
      this.waiter = null
      w.resolve({ value: undefined, done: true })
    }
  }

  private shift (): S {
    const value = this.queue[this.head]!
    this.queue[this.head++] = undefined as S
    if (this.head === this.queue.length) {
      this.queue = []
      this.head = 0
    }
    return value
  }
}

/** Every live subscription of this thread, by follow id. */
export class Follows {
  private readonly subs = new Map<number, Subscription<unknown>>()
  private readonly transport: FollowTransport
  private nextId = 1

  constructor (transport: FollowTransport) {
    this.transport = transport
  }

  get size (): number {
    return this.subs.size
  }

  open<S> (to: RefAddress, options: FollowOptions | undefined): Subscription<S> {
    const id = this.nextId
    this.nextId = this.nextId >= 0x7fffffff ? 1 : this.nextId + 1
    const sub = new Subscription<S>(this, id, to, options)
    if (options?.signal?.aborted === true) {
      sub.end(false)
      return sub
    }
    this.subs.set(id, sub as Subscription<unknown>)
    this.transport.subscribe(sub as Subscription<unknown>)
    return sub
  }

  /**
   * A FRAME_STATE arrived. States for a subscription that has ended are dropped. A
   * subscription whose agent's shard moved, or whose host became unreachable
   * (SHOAL_ERR_SHARD_UNAVAILABLE, in a cluster), is renewed, not ended: the follower sees
   * the agent's current state again once it is served (it may repeat the last one).
   */
  deliver (followId: number, ok: boolean, value: unknown): void {
    const sub = this.subs.get(followId)
    if (sub === undefined) return
    if (ok) sub.push(value)
    else if ((value as WireError).code === ShardUnavailableError.code) this.renewOne(followId)
    else sub.fail(errorFromWire(value as WireError))
  }

  /** Subscribe again, a little later (the agent's shard is moving, or its host is unreachable). */
  renewOne (followId: number): void {
    setTimeout(() => {
      const sub = this.subs.get(followId)
      if (sub !== undefined) this.transport.subscribe(sub)
    }, RENEW_DELAY_MS).unref()
  }

  /** The worker `thread` restarted: subscribe again on the new one. */
  renew (thread: number): void {
    for (const sub of this.subs.values()) if (sub.thread === thread) this.transport.subscribe(sub)
  }

  /** End every subscription (the host is closing). */
  endAll (): void {
    for (const sub of [...this.subs.values()]) sub.end(false)
  }

  /** @internal */
  forget (sub: Subscription<unknown>, unsubscribe: boolean): void {
    if (this.subs.get(sub.followId) !== sub) return
    this.subs.delete(sub.followId)
    if (unsubscribe && sub.thread >= 0) this.transport.unsubscribe(sub)
  }
}
