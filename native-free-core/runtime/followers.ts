/**
 * Who follows which agent on this thread (Pachyderm's `follow`): agent id → the
 * subscriptions `(thread, followId)` that get each of its committed states.
 *
 * Kept apart from the cells on purpose: a follower outlives the cell — a throwing
 * handler drops the cell (crash-only rollback), passivation drops it too, and followers
 * must keep receiving states when the agent comes back ("followers of an entity will
 * continue to receive updates", Pachyderm). It costs nothing while nobody follows: the
 * runtime checks `size` before looking anything up.
 *
 * Not persisted: a worker that dies loses its table, and the following thread subscribes
 * again to the new worker (src/host/follow.ts), which starts with the current state.
 *
 * What a follower gets, and when (the runtime calls `publish` when a batch's commit has
 * completed, before releasing its replies — the output gate):
 *   - first, the last *committed* state: a resident cell's own state if nothing of it is
 *     uncommitted or in flight, else the store's bytes, else `initial(key)` (the agent does
 *     not exist yet); following activates nothing and runs no handler;
 *   - then each committed batch's state of the agent (its stored bytes, not re-encoded);
 *     a deletion publishes the state the next activation starts from, `initial(key)`;
 *   - for memory-only agents, the state at the end of each command's turn.
 * So a follower never sees an uncommitted state, nor the same commit twice.
 */
import { keyOf, typeOf } from '../agent/agent-id.ts'
import { kBusy, kDelete, kDirty, kPersistent, kQueued } from './cell.ts'
import type { Cell } from './cell.ts'
import { MSG_FOLLOW, MSG_UNFOLLOW } from '../agent/envelope.ts'
import type { Envelope } from '../agent/envelope.ts'
import { AgentError, EncodeError, UnknownAgentTypeError, messageOf, toWire } from '../errors.ts'
import type { WireError } from '../errors.ts'
import type { AgentRegistry, TypeInfo } from '../agent/registry.ts'
import type { RuntimeOutput, ValueCodec } from './ports.ts'

/** What following needs from the shard runtime. */
export interface FollowHost {
  readonly registry: AgentRegistry
  readonly codec: ValueCodec
  readonly output: RuntimeOutput
  residentCell (id: string, hash: number): Cell | undefined
  /** A state of this agent was handed to the store and has not committed yet. */
  hasInflight (id: string): boolean
  /** The committed state in the store (persistent types only). Throws StorageError. */
  storedState (typeIdx: number, id: string): Uint8Array | undefined
  /** Let `env` wait in a busy agent's mailbox. */
  queue (cell: Cell, env: Envelope): void
  /** The cell's id as a string (made on demand). */
  idOf (cell: Cell): string
}

export class Follower {
  readonly thread: number
  readonly followId: number

  constructor (thread: number, followId: number) {
    this.thread = thread
    this.followId = followId
  }
}

export class Followers {
  private readonly byId = new Map<string, Follower[]>()
  private count = 0
  private readonly host: FollowHost

  constructor (host: FollowHost) {
    this.host = host
  }

  /** Subscriptions on this thread. */
  get size (): number {
    return this.count
  }

  of (id: string): readonly Follower[] | undefined {
    return this.byId.get(id)
  }

  add (id: string, thread: number, followId: number): void {
    const list = this.byId.get(id)
    if (list === undefined) this.byId.set(id, [new Follower(thread, followId)])
    else if (!list.some((f) => f.thread === thread && f.followId === followId)) list.push(new Follower(thread, followId))
    else return
    this.count++
  }

  remove (id: string, thread: number, followId: number): boolean {
    const list = this.byId.get(id)
    if (list === undefined) return false
    const i = list.findIndex((f) => f.thread === thread && f.followId === followId)
    if (i < 0) return false
    list.splice(i, 1)
    if (list.length === 0) this.byId.delete(id)
    this.count--
    return true
  }


  /**
   * End the subscriptions to the agents `select` picks by hash, telling each follower
   * why (their shard left this thread: the follower subscribes again where it went).
   */
  endWhere (select: (hash: number) => boolean, hashOf: (id: string) => number, why: WireError): number {
    let ended = 0
    for (const [id, list] of this.byId) {
      if (!select(hashOf(id))) continue
      this.byId.delete(id)
      for (const f of list) this.host.output.followed?.(f.thread, f.followId, false, why)
      this.count -= list.length
      ended += list.length
    }
    return ended
  }

  /**
   * MSG_FOLLOW / MSG_UNFOLLOW. Only a memory-only agent busy in an async turn makes a
   * subscription wait (its state is mid-turn and nowhere else); an unsubscription waits
   * behind anything already queued for that agent, so it never overtakes its subscription.
   */
  handle (env: Envelope): void {
    const host = this.host
    const cell = host.residentCell(env.id, env.hash)
    if (cell !== undefined && (cell.flags & kBusy) !== 0 && ((cell.flags & kQueued) !== 0 || (env.kind === MSG_FOLLOW && (cell.flags & kPersistent) === 0))) {
      host.queue(cell, env)
      return
    }
    if (env.kind === MSG_UNFOLLOW) {
      this.remove(env.id, env.replyTo, env.callId)
      return
    }
    const info = host.registry.types[env.typeIdx]
    let bytes: Uint8Array
    try {
      if (info === undefined) throw new UnknownAgentTypeError(`#${env.typeIdx}`)
      bytes = this.committedState(info, env.id, cell)
    } catch (err) {
      host.output.followed?.(env.replyTo, env.callId, false, toWire(err))
      return
    }
    this.add(env.id, env.replyTo, env.callId)
    host.output.followed?.(env.replyTo, env.callId, true, bytes)
  }

  /** Send a committed batch's states to their followers (in commit order: the runtime calls this per batch). */
  publish (states: ReadonlyArray<readonly [string, Uint8Array | null, number?]>): void {
    const out = this.host.output
    for (const [id, bytes] of states) {
      const list = this.byId.get(id)
      if (list === undefined) continue
      let value: Uint8Array | WireError
      let ok = true
      try {
        // a deleted agent's next state is a fresh one
        value = bytes ?? this.encodeFor(id, this.initialOf(this.host.registry.require(typeOf(id)), id))
      } catch (err) {
        ok = false
        value = toWire(err)
      }
      for (const f of [...list]) out.followed?.(f.thread, f.followId, ok, value)
    }
  }

  /** A memory-only agent's command turn ended: its state is as committed as it gets. */
  publishTurn (cell: Cell): void {
    let bytes: Uint8Array | null = null
    const id = this.host.idOf(cell)
    if ((cell.flags & kDelete) === 0) {
      try {
        bytes = this.encodeFor(id, cell.state)
      } catch (err) {
        for (const f of [...(this.byId.get(id) ?? [])]) this.host.output.followed?.(f.thread, f.followId, false, toWire(err))
        return
      }
    }
    this.publish([[id, bytes]])
  }

  /** The agent's last committed state, encoded: what a new follower sees first. */
  private committedState (info: TypeInfo, id: string, cell: Cell | undefined): Uint8Array {
    // a resident cell with nothing uncommitted and nothing in flight holds exactly that
    if (cell !== undefined && (cell.flags & (kBusy | kDirty)) === 0 && !this.host.hasInflight(id)) return this.encodeFor(id, cell.state)
    const bytes = this.host.storedState(info.index, id)
    // a plain view of exactly the state: lmdb-js's fast reads return a Buffer whose
    // byteLength is its whole read buffer, which TypedArray.set would copy past the end
    if (bytes !== undefined) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
    return this.encodeFor(id, this.initialOf(info, id))
  }

  private encodeFor (id: string, state: unknown): Uint8Array {
    try {
      return this.host.codec.encode(state)
    } catch (err) {
      throw new EncodeError(`the state of agent ${id.replaceAll('\u001f', '/')} cannot be encoded: ${messageOf(err)}`, { id })
    }
  }

  private initialOf (info: TypeInfo, id: string): unknown {
    try {
      return info.def.initial(keyOf(id))
    } catch (err) {
      throw new AgentError(`initial() failed: ${messageOf(err)}`, { name: err instanceof Error ? err.name : typeof err, id })
    }
  }
}
