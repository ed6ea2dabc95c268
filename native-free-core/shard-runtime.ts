/**
 * The single-threaded shard runtime: the agents of the shards one thread owns.
 *
 * It activates agents on their first message, runs one turn at a time per agent
 * (an async handler makes its agent busy; later messages wait in its mailbox while
 * other agents go on), rolls an agent back when a handler throws (crash-only, as in
 * Pachyderm's "immortal" entities), and gathers the turns of one loop iteration into
 * one store batch (group commit). Replies and sends of committed turns leave only
 * after their batch has committed: the output gate of Durable Objects, DNA's
 * `after_persist`. Queries never wait for a commit.
 *
 * It knows nothing of threads, rings or LMDB: messages come in through `deliver`, go
 * out through `RuntimeOutput`, and state goes to an injected `Store`. The same runtime
 * runs in worker threads, on the main thread (`workers: 0`) and in the simulator.
 *
 * Rollback. A handler mutates its state in place, so rolling back needs the last good
 * state. Outside the open batch it is in the store (drop the cell, reload on the next
 * message). Inside it, an agent may already have uncommitted turns: before a second
 * command on such an agent its state is encoded into `snapshots`, and a throw restores
 * it. A batch whose agent's last turn was followed by no other then commits the
 * snapshot bytes as-is (kSnapFresh), so each persisted command costs one encode.
 */
import { keyOf, idOf } from './agent-id.ts'
import type { AgentAddress } from './agent-id.ts'
import { Cell, kBusy, kDeactivate, kDelete, kDirty, kDropped, kNew, kPersistent, kSnapFresh } from './cell.ts'
import { AgentTable } from './agent-table.ts'
import { Envelope, MSG_CALL, MSG_TIMER } from './envelope.ts'
import { AgentTimers } from './agent-timers.ts'
import type { TimerHost } from './agent-timers.ts'
import {
  AgentError, DecodeError, EncodeError, ShoalError, StorageError, UnknownAgentTypeError, UnknownMethodError,
  messageOf
} from './errors.ts'
import type { WireError } from './errors.ts'
import { hashId } from './hash.ts'
import { Mailbox } from './mailbox.ts'
import type { AgentRegistry, MethodInfo, TypeInfo } from './registry.ts'
import type { Store } from './store.ts'
import { OutboundSend, TurnContext } from './turn-context.ts'
import type { ContextHost } from './turn-context.ts'

export interface ValueCodec {
  /** Encode a state; the bytes must stay valid until the batch has committed. */
  encode (value: unknown): Uint8Array
  decode (bytes: Uint8Array): unknown
}

/** Where the runtime's effects go: the host's rings, or the simulator's queues. */
export interface RuntimeOutput {
  reply (replyTo: number, callId: number, ok: boolean, value: unknown): void
  send (id: string, hash: number, typeIdx: number, methodIdx: number, payload: unknown): void
  /** An async turn settled outside the host loop: run `commit()` and flush soon. */
  wake (): void
  /** A handler failed, or a message could not be handled (for events and dead letters). */
  agentError? (id: string, method: string, error: WireError): void
}

export interface ShardRuntimeOptions {
  readonly registry: AgentRegistry
  /** Committed states; null keeps every type in memory only (as `durable: false`). */
  readonly store: Store | null
  readonly codec: ValueCodec
  readonly output: RuntimeOutput
  readonly offload?: (name: string, input: unknown) => Promise<unknown>
  /** The host clock's tick when the runtime starts (a restarted worker joins a running clock). */
  readonly startTick?: number
}

/** A reply or send held by the output gate until its batch commits. */
class Effect {
  readonly cell: Cell
  readonly send: OutboundSend | null
  readonly replyTo: number
  readonly callId: number
  readonly ok: boolean
  readonly value: unknown

  constructor (cell: Cell, send: OutboundSend | null, replyTo: number, callId: number, ok: boolean, value: unknown) {
    this.cell = cell
    this.send = send
    this.replyTo = replyTo
    this.callId = callId
    this.ok = ok
    this.value = value
  }
}

interface Inflight { readonly bytes: Uint8Array | null, readonly seq: number }

export class ShardRuntime implements ContextHost, TimerHost {
  readonly registry: AgentRegistry
  readonly store: Store | null
  readonly codec: ValueCodec
  readonly output: RuntimeOutput
  readonly table = new AgentTable<Cell>()
  /** The host clock's tick as this thread has processed it; moved by `advanceTo`. */
  tick = 0
  /** ctx.timeout and idle deadlines of the resident agents (agent-timers.ts). */
  readonly timers: AgentTimers

  /** Messages delivered, for stats. */
  messages = 0
  /** Async turns in flight. */
  busy = 0
  commits = 0
  committedStates = 0

  private readonly persistent: readonly boolean[]
  private readonly offloader: ((name: string, input: unknown) => Promise<unknown>) | undefined
  private dirty: Cell[] = []
  private effects: Effect[] = []
  private readonly snapshots = new Map<Cell, Uint8Array>()
  /** States written to the store but not yet committed: reads must see them. */
  private readonly inflight = new Map<string, Inflight>()
  private commitSeq = 0
  private lastCommit: Promise<void> | null = null
  /** Reused for timer turns (deliver clones it when it must wait in a mailbox). */
  private readonly timerEnvelope = new Envelope()

  constructor (options: ShardRuntimeOptions) {
    this.registry = options.registry
    this.store = options.store
    this.codec = options.codec
    this.output = options.output
    this.offloader = options.offload
    this.persistent = this.registry.types.map((t) => options.store !== null && t.def.durable !== false)
    this.tick = options.startTick ?? 0
    this.timers = new AgentTimers(this, this.registry.types.map((t) => t.def.idleTicks ?? 0))
    this.timers.advanceTo(this.tick, 0)
  }

  get activeAgents (): number {
    return this.table.size
  }

  /** True when a batch is open or commits are in flight. */
  get pendingCommit (): boolean {
    return this.dirty.length !== 0 || this.effects.length !== 0 || this.lastCommit !== null
  }

  deliver (env: Envelope): void {
    this.messages++
    let cell = this.table.get(env.id, env.hash)
    if (cell === undefined) {
      cell = this.activate(env)
      if (cell === undefined) return
    } else if ((cell.flags & kBusy) !== 0) {
      (cell.mailbox ??= new Mailbox()).push(env.clone())
      return
    }
    if (env.kind !== MSG_TIMER) cell.lastTick = this.tick // a timer turn is not a message: idleness goes on
    this.turn(cell, env)
  }

  /**
   * Move time to the host clock's tick `to`: fire the timers and idle checks due on the
   * way (agent-timers.ts), handling at most `budget` of them. True once caught up;
   * false means call again (from the next loop pass).
   */
  advanceTo (to: number, budget: number): boolean {
    if (to <= this.tick && this.timers.caughtUp) return true
    return this.timers.advanceTo(to, budget)
  }

  /** @internal TimerHost: the agent's ctx.timeout fired. */
  timerTurn (id: string, hash: number, typeIdx: number): void {
    const env = this.timerEnvelope
    env.kind = MSG_TIMER
    env.id = id
    env.hash = hash
    env.typeIdx = typeIdx
    env.methodIdx = 0
    env.payload = undefined
    this.deliver(env)
  }

  /** @internal TimerHost: idle passivation, committing first like ctx.deactivate. */
  passivate (cell: Cell): void {
    cell.flags |= kDeactivate
    if ((cell.flags & kDirty) === 0) this.drop(cell)
  }

  /**
   * Close the open batch: encode dirty states, hand them to the store, and release the
   * batch's replies and sends once it has committed. Call once per loop iteration.
   */
  commit (): void {
    if (this.dirty.length === 0 && this.effects.length === 0) return
    const effects = this.effects
    this.effects = []
    const states: Array<[string, Uint8Array | null]> = []
    let failed: Map<Cell, ShoalError> | null = null
    for (const cell of this.dirty) {
      if ((cell.flags & kDirty) === 0) continue // poisoned and dropped earlier in this batch
      let bytes: Uint8Array | null
      if ((cell.flags & kDelete) !== 0) bytes = null
      else if ((cell.flags & kSnapFresh) !== 0) bytes = this.snapshots.get(cell)!
      else {
        try {
          bytes = this.codec.encode(cell.state)
        } catch (err) {
          (failed ??= new Map()).set(cell, unencodable(cell, err))
          cell.flags &= ~(kDirty | kSnapFresh)
          this.drop(cell)
          continue
        }
      }
      states.push([cell.id, bytes])
      cell.flags &= ~(kDirty | kSnapFresh | kNew)
      if ((cell.flags & (kDeactivate | kDelete)) !== 0 && (cell.flags & kBusy) === 0) this.drop(cell)
    }
    this.dirty = []
    this.snapshots.clear()
    const released = failed === null ? effects : this.failEffects(effects, failed)
    if (states.length === 0) {
      this.releaseInOrder(released)
      return
    }
    this.commits++
    this.committedStates += states.length
    let result: Promise<void> | undefined
    try {
      result = this.store!.commit({ states })
    } catch (err) {
      this.commitFailed(states, released, err)
      return
    }
    if (result === undefined) {
      this.releaseInOrder(released)
      return
    }
    const seq = ++this.commitSeq
    for (const [id, bytes] of states) this.inflight.set(id, { bytes, seq })
    const done = result.then(() => {
      for (const [id] of states) if (this.inflight.get(id)?.seq === seq) this.inflight.delete(id)
      this.release(released)
    }, (err: unknown) => {
      for (const [id] of states) if (this.inflight.get(id)?.seq === seq) this.inflight.delete(id)
      this.commitFailed(states, released, err)
    }).finally(() => {
      if (this.lastCommit === done) this.lastCommit = null
      this.output.wake()
    })
    this.lastCommit = done
  }

  /** Resolve a `ctx.send` target now, so that mistakes throw inside the handler. */
  resolveSend (target: AgentAddress, method: string, payload: unknown): OutboundSend {
    const info = this.registry.require(target?.type)
    const m = this.registry.method(info, method)
    const id = idOf(target)
    return new OutboundSend(id, hashId(id), info.index, m.index, payload)
  }

  offload (name: string, input: unknown): Promise<unknown> {
    if (this.offloader === undefined) {
      return Promise.reject(new ShoalError('ctx.offload needs the host option `offload: { filename }`'))
    }
    return this.offloader(name, input)
  }

  /** Resolves when every commit handed to the store so far has completed and released its effects. */
  whenCommitted (): Promise<void> {
    return this.lastCommit ?? Promise.resolve()
  }

  /** Drop every resident agent (host shutdown, after the last commit). */
  clear (): void {
    this.table.clear()
    this.timers.clear()
  }

  private activate (env: Envelope): Cell | undefined {
    const info = this.registry.types[env.typeIdx]
    if (info === undefined) {
      this.reject(env, '?', new UnknownAgentTypeError(`#${env.typeIdx}`))
      return undefined
    }
    const m = methodOf(info, env)
    if (m === undefined) {
      this.reject(env, `#${env.methodIdx}`, new UnknownMethodError(info.type, `#${env.methodIdx}`))
      return undefined
    }
    let flags = 0
    let state: unknown
    let found = false
    if (this.persistent[env.typeIdx] === true) {
      flags = kPersistent
      let bytes: Uint8Array | null | undefined
      try {
        const pending = this.inflight.get(env.id)
        bytes = pending !== undefined ? pending.bytes : this.store!.getState(env.id)
      } catch (err) {
        this.reject(env, m.name, new StorageError(`reading agent ${printable(env.id)} failed: ${messageOf(err)}`, { id: env.id }))
        return undefined
      }
      if (bytes != null) {
        try {
          state = this.codec.decode(bytes)
          found = true
        } catch (err) {
          this.reject(env, m.name, new DecodeError(`the stored state of agent ${printable(env.id)} does not decode: ${messageOf(err)}`, { id: env.id }))
          return undefined
        }
      }
    }
    if (!found) {
      try {
        state = info.def.initial(keyOf(env.id))
      } catch (err) {
        this.reject(env, m.name, new AgentError(`initial() failed: ${messageOf(err)}`, { name: nameOf(err), id: env.id }))
        return undefined
      }
      flags |= kNew
    }
    const cell = new Cell(env.id, env.hash, info, state, flags, this.tick)
    this.table.set(env.id, env.hash, cell)
    this.timers.activated(cell)
    return cell
  }

  private turn (cell: Cell, env: Envelope): void {
    const m = methodOf(cell.info, env)
    if (m === undefined) {
      this.reject(env, `#${env.methodIdx}`, new UnknownMethodError(cell.info.type, `#${env.methodIdx}`))
      return
    }
    if (m.command && (cell.flags & (kPersistent | kDirty | kSnapFresh)) === (kPersistent | kDirty)) {
      // a second command in the open batch: keep the state the first one left, for rollback
      try {
        this.snapshots.set(cell, this.codec.encode(cell.state))
        cell.flags |= kSnapFresh
      } catch (err) {
        this.poison(cell, unencodable(cell, err))
        this.deliver(env)
        return
      }
    }
    const ctx = new TurnContext(this, cell, m.command)
    let result: unknown
    try {
      result = m.fn(cell.state, env.payload, ctx)
    } catch (err) {
      this.failTurn(cell, env, m, ctx, err)
      return
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      cell.flags |= kBusy
      this.busy++
      const held = env.kind === MSG_CALL ? env.clone() : env
      Promise.resolve(result as PromiseLike<unknown>).then(
        (value) => this.settle(cell, held, m, ctx, true, value),
        (err: unknown) => this.settle(cell, held, m, ctx, false, err))
      return
    }
    this.finishTurn(cell, env, m, ctx, result)
  }

  private settle (cell: Cell, env: Envelope, m: MethodInfo, ctx: TurnContext, ok: boolean, value: unknown): void {
    cell.flags &= ~kBusy
    this.busy--
    if (ok) this.finishTurn(cell, env, m, ctx, value)
    else this.failTurn(cell, env, m, ctx, value)
    this.drainMailbox(cell)
    this.output.wake()
  }

  private finishTurn (cell: Cell, env: Envelope, m: MethodInfo, ctx: TurnContext, value: unknown): void {
    ctx.ended = true
    if (ctx.timeoutAt !== -1 || ctx.idleTicks !== -1) this.timers.fromTurn(cell, ctx.timeoutAt, ctx.idleTicks)
    if (m.command && (cell.flags & kPersistent) !== 0) {
      if ((cell.flags & kDirty) === 0) {
        cell.flags |= kDirty
        this.dirty.push(cell)
      }
      cell.flags &= ~kSnapFresh
      if (env.kind === MSG_CALL) this.effects.push(new Effect(cell, null, env.replyTo, env.callId, true, value))
      if (ctx.outbox !== null) for (const s of ctx.outbox) this.effects.push(new Effect(cell, s, 0, 0, true, undefined))
      return
    }
    if (env.kind === MSG_CALL) this.output.reply(env.replyTo, env.callId, true, value)
    if (ctx.outbox !== null) for (const s of ctx.outbox) this.output.send(s.id, s.hash, s.typeIdx, s.methodIdx, s.payload)
    if ((cell.flags & (kDeactivate | kDelete)) !== 0 && (cell.flags & kDirty) === 0) this.drop(cell)
  }

  private failTurn (cell: Cell, env: Envelope, m: MethodInfo, ctx: TurnContext, err: unknown): void {
    ctx.ended = true
    const error = new AgentError(messageOf(err), { name: nameOf(err), id: cell.id, method: m.name, ...codeOf(err) })
    const gated = m.command && (cell.flags & kPersistent) !== 0
    if (m.command) {
      cell.flags &= ~(kDeactivate | kDelete)
      if ((cell.flags & kDirty) !== 0) {
        // uncommitted turns of this batch stay: back to the state they left
        try {
          cell.state = this.codec.decode(this.snapshots.get(cell)!)
          cell.flags |= kSnapFresh
        } catch (decodeErr) {
          this.poison(cell, unencodable(cell, decodeErr))
        }
      } else {
        this.drop(cell) // back to the last committed state on the next message
      }
    }
    // queries are read-only by contract: nothing to roll back
    if (env.kind === MSG_CALL) {
      if (gated) this.effects.push(new Effect(cell, null, env.replyTo, env.callId, false, error.toWire()))
      else this.output.reply(env.replyTo, env.callId, false, error.toWire())
    }
    this.output.agentError?.(cell.id, m.name, error.toWire())
  }

  private drainMailbox (cell: Cell): void {
    const mailbox = cell.mailbox
    if (mailbox === null) return
    while (mailbox.size !== 0) {
      if ((cell.flags & kDropped) !== 0) {
        cell.mailbox = null
        for (const env of mailbox.drain()) this.deliver(env)
        return
      }
      if ((cell.flags & kBusy) !== 0) return
      const env = mailbox.shift()!
      if (env.kind !== MSG_TIMER) cell.lastTick = this.tick
      this.turn(cell, env)
    }
    if ((cell.flags & kBusy) === 0) cell.mailbox = null
  }

  /**
   * An agent's uncommitted state cannot be encoded: fail the batch's replies for it,
   * drop its sends, and return it to its last committed state.
   */
  private poison (cell: Cell, error: ShoalError): void {
    cell.flags &= ~(kDirty | kSnapFresh)
    this.snapshots.delete(cell)
    this.effects = this.failEffects(this.effects, new Map([[cell, error]]))
    this.drop(cell)
    this.output.agentError?.(cell.id, '', error.toWire())
  }

  private failEffects (effects: Effect[], failed: ReadonlyMap<Cell, ShoalError>): Effect[] {
    const kept: Effect[] = []
    for (const e of effects) {
      const error = failed.get(e.cell)
      if (error === undefined) kept.push(e)
      else if (e.send === null) kept.push(new Effect(e.cell, null, e.replyTo, e.callId, false, error.toWire()))
    }
    return kept
  }

  private commitFailed (states: ReadonlyArray<readonly [string, Uint8Array | null]>, effects: Effect[], err: unknown): void {
    const error = new StorageError(`commit failed: ${messageOf(err)}`)
    for (const [id] of states) {
      const cell = this.table.get(id, hashId(id))
      if (cell !== undefined && (cell.flags & kBusy) === 0) this.drop(cell)
    }
    for (const e of effects) {
      if (e.send === null) this.output.reply(e.replyTo, e.callId, false, error.toWire())
    }
  }

  /** Release effects after every earlier commit in flight (replies stay in order). */
  private releaseInOrder (effects: Effect[]): void {
    if (effects.length === 0) return
    if (this.lastCommit === null) this.release(effects)
    else this.lastCommit = this.lastCommit.then(() => this.release(effects))
  }

  private release (effects: Effect[]): void {
    for (const e of effects) {
      if (e.send !== null) this.output.send(e.send.id, e.send.hash, e.send.typeIdx, e.send.methodIdx, e.send.payload)
      else this.output.reply(e.replyTo, e.callId, e.ok, e.value)
    }
  }

  private drop (cell: Cell): void {
    if (this.table.get(cell.id, cell.hash) === cell) this.table.delete(cell.id, cell.hash)
    cell.flags |= kDropped
    if (cell.timer !== -1) this.timers.dropped(cell)
  }

  private reject (env: Envelope, method: string, error: ShoalError): void {
    if (env.kind === MSG_CALL) this.output.reply(env.replyTo, env.callId, false, error.toWire())
    this.output.agentError?.(env.id, method, error.toWire())
  }
}

/** The handler a message runs: a command or query by index, or the type's timeout for MSG_TIMER. */
function methodOf (info: TypeInfo, env: Envelope): MethodInfo | undefined {
  return env.kind === MSG_TIMER ? info.timeoutMethod ?? undefined : info.methods[env.methodIdx]
}

function unencodable (cell: Cell, err: unknown): EncodeError {
  return new EncodeError(`the state of agent ${printable(cell.id)} cannot be encoded: ${messageOf(err)}`, { id: cell.id })
}

function nameOf (err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}

function codeOf (err: unknown): { code?: string } {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? { code } : {}
}

/** Ids in messages: the separators shown as '/'. */
export function printable (id: string): string {
  return id.replaceAll('\u001f', '/')
}
