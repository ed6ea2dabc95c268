/**
 * Group commit and the output gate. The turns of one loop iteration gather into one
 * store batch: their agents' states, `ctx.storage` writes, outbox records, what the
 * outbox applied (durable-outbox.ts: removals or applied records),
 * reminder records and quota counts. Replies and sends of committed turns leave only
 * after their batch has committed — the output gate of Durable Objects, DNA's
 * `after_persist`; queries never wait for a commit.
 *
 * Rollback. A handler mutates its state in place, so rolling back needs the last good
 * state. Outside the open batch it is in the store (drop the cell, reload on the next
 * message). Inside it, an agent may already have uncommitted turns: before a second
 * command on such an agent its state is encoded into `snapshots`, and a throw restores
 * it. A batch whose agent's last turn was followed by no other then commits the
 * snapshot bytes as-is (kSnapFresh), so each persisted command costs one encode.
 * A state that is a plain object of primitive fields (a counter, a balance) is kept as a
 * copy instead (`flatCopy`): the hot agent's profile had the snapshot's encode, and the
 * Buffer each encode returns, at 15% of its worker for an agent receiving thousands of
 * commands per batch — a copy is a fraction of that, and restores the same values. Such a
 * snapshot is not commit bytes: kSnapFresh stays clear and the commit encodes the state once.
 *
 * `ctx.storage` writes (agent-storage.ts) ride in the same batch: a turn's writes join
 * the open batch when it succeeds and are dropped when it throws. Until a batch has
 * committed, reads see its states and writes through `inflightState` and `storageBelow`.
 */
import { BatchIds } from './batch-ids.ts'
import { printable } from '../agent/agent-id.ts'
import { kBusy, kCounted, kDeactivate, kDefaultQuota, kDelete, kDirty, kNew, kSnapFresh } from './cell.ts'
import type { Cell } from './cell.ts'
import type { IdArena } from './id-arena.ts'
import { CommitStats } from './commit-stats.ts'
import type { DurableOutbox } from './durable-outbox.ts'
import type { Followers } from './followers.ts'
import type { RuntimeOutput, ValueCodec } from './ports.ts'
import type { OutboundSend } from './turn-context.ts'
import { EncodeError, ShoalError, StorageError, messageOf } from '../errors.ts'
import { hashId, shardOf } from '../placement/hash.ts'
import { StorageOverlay } from '../storage/agent-storage.ts'
import { PackedStates } from '../storage/packed-states.ts'
import type { TurnStorage } from '../storage/agent-storage.ts'
import type { OutboxRecord, Store } from '../storage/store.ts'
import type { QuotaBatch, QuotaGate } from '../tenancy/quota-gate.ts'
import type { Clock } from '../time/clock.ts'
import type { ShardReminders } from '../time/shard-reminders.ts'

/** What the pipeline needs from the runtime whose turns it commits. */
export interface CommitHost {
  readonly store: Store | null
  readonly codec: ValueCodec
  readonly output: RuntimeOutput
  readonly quotas: QuotaGate
  readonly followers: Followers
  readonly reminders: ShardReminders
  readonly outbox: DurableOutbox
  residentCell (id: string, hash: number): Cell | undefined
  /** Take a cell out of the table: the next message reloads its last committed state. */
  drop (cell: Cell): void
  /** The cell's id as a string (made on demand: a resident cell holds only its bytes' ref). */
  idOf (cell: Cell): string
  /** The resident cells' id bytes (copied into the batch as a cell is staged). */
  readonly ids: IdArena
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

/**
 * The states of one commit in flight: what a reactivation must read instead of the store.
 * Indexed by id only when first asked (`byId`): most batches commit without anyone asking
 * — a Map entry per committed state was a third of a durable worker's commit time.
 */
interface InflightStates {
  readonly seq: number
  readonly states: PackedStates
  readonly ids: BatchIds
  /** State index by id. */
  byId: Map<string, number> | null
}
/** A commit in flight's storage changes of one agent. */
interface InflightStorage { readonly overlay: StorageOverlay, readonly seq: number }

export class CommitPipeline {
  commits = 0
  committedStates = 0
  /** Batch sizes and commit latencies. */
  readonly stats = new CommitStats()
  private readonly host: CommitHost
  private readonly stopwatch: Clock
  /** Bytes and entries a batch's ids and states start with (null: their defaults, 16 KiB and 512). */
  private readonly batchRoom: { readonly bytes: number, readonly entries: number } | null
  private dirty: Cell[] = []
  /** The dirty cells' ids, one entry per cell in `dirty`, copied as each is staged. */
  private dirtyIds: BatchIds
  /** Settled batches' BatchIds, for the next batches (no new buffer per commit). */
  private readonly idsPool: BatchIds[] = []
  /** Settled batches' PackedStates, likewise. */
  private readonly statesPool: PackedStates[] = []
  private effects: Effect[] = []
  /** Per agent with uncommitted turns: its last good state as bytes (kSnapFresh) or as a flat copy. */
  private readonly snapshots = new Map<Cell, Uint8Array | object>()
  /**
   * States written to the store but not yet committed, one map per commit (oldest
   * first): reads must see them. Dropped whole when their commit settles — a map per
   * batch, not an entry per state to find and delete (5% of a durable worker's time).
   */
  private inflight: InflightStates[] = []
  /**
   * Agents dropped from the table while a state of theirs was in a commit in flight, with
   * the newest commit's sequence then. Only these can be activated again before their
   * state is in the store: activation asks here, and so never indexes a batch for the
   * millions of agents it finds neither resident nor in flight.
   */
  private readonly droppedInflight = new Map<string, number>()
  private commitSeq = 0
  /** Inside `commit()`'s loop over the batch: drops are noted with this batch, not the ones before. */
  private building = false
  private lastCommit: Promise<void> | null = null
  /** `ctx.storage` writes of the open batch, per agent id. */
  private openStorage = new Map<string, StorageOverlay>()
  /** `ctx.storage` writes handed to the store and not yet committed, per agent newest first. */
  private readonly inflightStorage = new Map<string, InflightStorage[]>()

  constructor (host: CommitHost, stopwatch: Clock, batchRoom: { readonly bytes: number, readonly entries: number } | null = null) {
    this.host = host
    this.stopwatch = stopwatch
    this.batchRoom = batchRoom
    this.dirtyIds = this.newIds()
  }

  private newIds (): BatchIds {
    const room = this.batchRoom
    return room === null ? new BatchIds(this.host.ids.decode) : new BatchIds(this.host.ids.decode, room.bytes, room.entries)
  }

  private newStates (): PackedStates {
    const room = this.batchRoom
    return room === null ? new PackedStates() : new PackedStates(room.bytes, room.entries)
  }

  /** True when a batch is open or commits are in flight. */
  get pending (): boolean {
    return this.dirty.length !== 0 || this.effects.length !== 0 || this.host.outbox.hasOpen || this.host.reminders.hasOpen || this.lastCommit !== null
  }

  /** A persistent agent's command succeeded: its state joins the open batch. */
  stage (cell: Cell): void {
    if ((cell.flags & kDirty) === 0) {
      cell.flags |= kDirty
      this.dirty.push(cell)
      // the id's bytes now, while its record is in cache (the message was just matched
      // against it): the commit loop then reads no record (BatchIds)
      const ref = cell.idRef
      if (typeof ref === 'number') this.dirtyIds.addRef(this.host.ids, ref)
      else this.dirtyIds.addString()
    }
  }

  /** A succeeded turn's `ctx.storage` writes join the open batch. */
  joinStorage (id: string, storage: TurnStorage): void {
    storage.joinTo(this.openLayer(id))
  }

  /** The open batch's `ctx.storage` layer of `id`, made if it has none (a synchronous turn writes into it directly). */
  openLayer (id: string): StorageOverlay {
    let open = this.openStorage.get(id)
    if (open === undefined) {
      const chain = this.inflightStorage.get(id) // newest first: room for as many writes as the last batch's
      this.openStorage.set(id, open = new StorageOverlay(chain === undefined ? null : chain[0]!.overlay))
    }
    return open
  }

  /** Hold a reply until the open batch has committed. */
  holdReply (cell: Cell, replyTo: number, callId: number, ok: boolean, value: unknown): void {
    this.effects.push(new Effect(cell, null, replyTo, callId, ok, value))
  }

  /** Hold a send until the open batch has committed (a durable one gets its outbox key then). */
  holdSend (cell: Cell, send: OutboundSend): void {
    this.effects.push(new Effect(cell, send, 0, 0, true, undefined))
  }

  /** Before a second command in the open batch: keep the state the first one left, for rollback. Throws if it cannot be encoded. */
  snapshot (cell: Cell): void {
    // the copy kept for the command before this one is no one's state (restore deletes
    // what it hands back): write this one over it, instead of a new object per command
    const kept = this.snapshots.get(cell)
    if (kept !== undefined && !(kept instanceof Uint8Array) && copyInto(kept, cell.state)) return
    const copy = flatCopy(cell.state)
    if (copy !== undefined) {
      this.snapshots.set(cell, copy) // not commit bytes: kSnapFresh stays clear
      return
    }
    this.snapshots.set(cell, this.host.codec.encode(cell.state))
    cell.flags |= kSnapFresh
  }

  /** A command threw after earlier uncommitted turns: back to the state they left. Throws if it does not decode. */
  restore (cell: Cell): void {
    const kept = this.snapshots.get(cell)!
    if (kept instanceof Uint8Array) {
      cell.state = this.host.codec.decode(kept)
      cell.flags |= kSnapFresh
      return
    }
    // the copy becomes the live state: the next command copies it again before it runs
    // (kSnapFresh is clear), so no handler ever mutates a kept copy
    cell.state = kept
    this.snapshots.delete(cell)
  }

  /**
   * An agent's uncommitted state cannot be encoded: fail the batch's replies for it,
   * drop its sends, and return it to its last committed state.
   */
  poison (cell: Cell, error: ShoalError): void {
    cell.flags &= ~(kDirty | kSnapFresh)
    this.snapshots.delete(cell)
    const id = this.host.idOf(cell)
    this.openStorage.delete(id)
    this.effects = failEffects(this.effects, new Map([[cell, error]]))
    this.host.drop(cell)
    this.host.output.agentError?.(id, '', error.toWire())
  }

  /**
   * Close the open batch: encode dirty states, hand them to the store, and release the
   * batch's replies and sends once it has committed.
   */
  commit (): void {
    const host = this.host
    const outbox = host.outbox
    if (this.dirty.length === 0 && this.effects.length === 0 && !outbox.hasOpen && !host.reminders.hasOpen) return
    const startedAt = this.stopwatch.now()
    const effects = this.effects
    this.effects = []
    // packed (packed-states.ts): no tuple or view per state for the commit in flight to hold
    const states = this.statesPool.pop() ?? this.newStates()
    const ids = this.dirtyIds
    this.dirtyIds = this.idsPool.pop() ?? this.newIds()
    let failed: Map<Cell, ShoalError> | null = null
    let droppedHere: string[] | null = null
    const dirty = this.dirty
    let touched = 0
    for (let k = 0; k < dirty.length; k++) {
      if (k >= touched) touched = touchCells(dirty, k)
      const cell = dirty[k]!
      if ((cell.flags & kDirty) === 0) continue // poisoned and dropped earlier in this batch
      let bytes: Uint8Array | null
      // a resident cell's id stays bytes, copied when it was staged: the store keys its
      // state by them (BatchIds); a string is made only for what is looked up by id (a
      // delete's storage and reminders, a quota other than the default, an error)
      if ((cell.flags & kDelete) !== 0) {
        const id = host.idOf(cell)
        bytes = null
        this.openStorage.set(id, this.wipeOverlay(id))
        host.reminders.wipe(id)
      } else if ((cell.flags & kSnapFresh) !== 0) bytes = this.snapshots.get(cell) as Uint8Array // kSnapFresh: bytes, never a copy
      else {
        try {
          bytes = host.codec.encode(cell.state)
        } catch (err) {
          const id = host.idOf(cell);
          (failed ??= new Map()).set(cell, unencodable(id, err))
          cell.flags &= ~(kDirty | kSnapFresh)
          this.openStorage.delete(id)
          host.drop(cell)
          continue
        }
      }
      if ((cell.flags & (kCounted | kDelete)) !== 0) {
        if ((cell.flags & kDefaultQuota) !== 0) host.quotas.committingDefault(cell) // no read of its id
        else host.quotas.committing(cell, host.idOf(cell))
      }
      ids.keep(k, states.length)
      states.push(ids.hasBytes(states.length) ? null : host.idOf(cell), bytes, cell.hash)
      cell.flags &= ~(kDirty | kSnapFresh | kNew)
      if ((cell.flags & (kDeactivate | kDelete)) !== 0 && (cell.flags & kBusy) === 0) {
        this.building = true
        host.drop(cell)
        this.building = false;
        (droppedHere ??= []).push(host.idOf(cell)) // dropped: the cell holds its id as a string
      }
    }
    this.dirty = []
    ids.truncate(states.length)
    this.snapshots.clear()
    const released = failed === null ? effects : failEffects(effects, failed)
    let outboxPuts: OutboxRecord[] | null = null
    for (const e of released) {
      const send = e.send
      if (send?.record != null) {
        send.key = outbox.nextKey()
        send.origin = outbox.origin
        send.senderShard = shardOf(e.cell.hash);
        (outboxPuts ??= []).push({ senderShard: send.senderShard, origin: send.origin, key: send.key, bytes: send.record })
      }
    }
    // before the store has the records: redelivery leaves them alone until this commit settles
    const unreleased = outboxPuts === null ? null : outbox.storing(outboxPuts[0]!.key, outboxPuts[outboxPuts.length - 1]!.key)
    const outboxPart = outbox.takeOpen()
    let storage: Map<string, StorageOverlay> | null = null
    if (this.openStorage.size !== 0) {
      storage = this.openStorage
      this.openStorage = new Map()
      // layers a throwing turn truncated to nothing carry no write
      for (const [id, layer] of storage) if (layer.length === 0 && !layer.wiped) storage.delete(id)
      if (storage.size === 0) storage = null
    }
    const reminders = host.reminders.takeOpen()
    if (states.length === 0 && storage === null && outboxPuts === null && outboxPart === null && reminders === null) {
      this.giveIds(ids)
      this.giveStates(states)
      this.releaseInOrder(released)
      return
    }
    this.commits++
    this.committedStates += states.length
    this.stats.batch(states.length)
    const quota = host.quotas.closeBatch()
    const seq = ++this.commitSeq
    if (storage !== null) {
      for (const [id, overlay] of storage) {
        const chain = this.inflightStorage.get(id)
        if (chain === undefined) this.inflightStorage.set(id, [{ overlay, seq }])
        else chain.unshift({ overlay, seq })
      }
    }
    const settled = (committed: boolean): void => {
      if (this.inflight.length !== 0) this.inflight = this.inflight.filter((b) => b.seq !== seq)
      this.sweepDropped()
      if (storage !== null) {
        for (const id of storage.keys()) {
          const chain = this.inflightStorage.get(id)
          if (chain === undefined) continue
          const i = chain.findIndex((c) => c.seq === seq)
          if (i >= 0) chain.splice(i, 1)
          if (chain.length === 0) this.inflightStorage.delete(id)
        }
      }
      if (outboxPart !== null) outbox.settled(outboxPart, committed)
      if (unreleased !== null) outbox.released(unreleased)
    }
    let result: Promise<void> | undefined
    try {
      result = host.store!.commit({
        states,
        stateIds: ids,
        storage,
        outboxPuts,
        outboxDeletes: outboxPart?.deletes ?? null,
        appliedPuts: outboxPart?.applied ?? null,
        appliedDeletes: outboxPart?.forgotten ?? null,
        quotaDeltas: quota?.deltas ?? null,
        reminders
      })
    } catch (err) {
      settled(false)
      if (droppedHere !== null) for (const id of droppedHere) this.noteDropped(id)
      this.commitFailed(states, ids, released, err, quota)
      this.giveIds(ids) // states not: writes queued before the throw may still read their buffer
      return
    }
    if (result === undefined) {
      settled(true)
      if (droppedHere !== null) for (const id of droppedHere) this.noteDropped(id)
      this.stats.latency(this.stopwatch.now() - startedAt)
      if (quota !== null) host.quotas.committed(quota)
      if (host.followers.size !== 0) {
        if (this.lastCommit === null) host.followers.publish(ids.resolved(states))
        else this.lastCommit = this.lastCommit.then(() => host.followers.publish(ids.resolved(states)))
      } else {
        this.giveIds(ids)
        this.giveStates(states) // a synchronous store has copied what it keeps
      }
      this.releaseInOrder(released)
      return
    }
    this.inflight.push({ seq, states, ids, byId: null })
    if (droppedHere !== null) for (const id of droppedHere) this.droppedInflight.set(id, seq)
    const done = result.then(() => {
      settled(true)
      this.stats.latency(this.stopwatch.now() - startedAt)
      if (quota !== null) host.quotas.committed(quota)
      if (host.followers.size !== 0) host.followers.publish(ids.resolved(states))
      this.release(released)
      this.giveIds(ids) // no one reads this batch's ids any more: settled() took it out of inflight
      this.giveStates(states) // nor its states, and the store has written them
    }, (err: unknown) => {
      settled(false)
      this.commitFailed(states, ids, released, err, quota)
      this.giveIds(ids)
    }).finally(() => {
      if (this.lastCommit === done) this.lastCommit = null
      host.output.wake()
    })
    this.lastCommit = done
  }

  /**
   * A batch's ids that no one will read again go back to the pool, for a later batch: a
   * new buffer per commit (≈ 190 KB, zero-filled) was ≈ 1 % of a fanout worker, and
   * external memory for V8 to count (bench/RESULTS.md, issue 13).
   */
  private giveIds (ids: BatchIds): void {
    ids.reset()
    if (this.idsPool.length < kIdsPooled && ids.capacity <= kIdsPooledBytes) this.idsPool.push(ids)
  }

  /** A settled batch's states, for a later batch (the store is done with their bytes). */
  private giveStates (states: PackedStates): void {
    states.reset()
    if (this.statesPool.length < kIdsPooled && states.capacity <= kIdsPooledBytes) this.statesPool.push(states)
  }

  /** Resolves when every commit handed to the store so far has completed and released its effects. */
  whenCommitted (): Promise<void> {
    return this.lastCommit ?? Promise.resolve()
  }

  /** `ctx.storage` layers above the store for `id`: the open batch's, then those in flight, newest first. */
  storageBelow (id: string): StorageOverlay[] {
    const open = this.openStorage.get(id)
    const chain = this.inflightStorage.get(id)
    if (chain === undefined) return open === undefined ? kNoLayers : [open]
    const layers = chain.map((c) => c.overlay)
    if (open !== undefined) layers.unshift(open)
    return layers
  }

  /** Does a commit in flight hold a state of an agent `picks` selects by id? (A shard may leave only once none does.) */
  inflightWhere (picks: (id: string) => boolean): boolean {
    for (const batch of this.inflight) {
      const states = batch.states
      for (let k = 0; k < states.length; k++) if (picks(states.id(k) ?? batch.ids.id(k))) return true
    }
    return false
  }

  /** The newest state of `id` in a commit in flight: bytes, null (deleted), or undefined (none). */
  inflightState (id: string): Uint8Array | null | undefined {
    for (let i = this.inflight.length - 1; i >= 0; i--) {
      const batch = this.inflight[i]!
      if (batch.byId === null) {
        batch.byId = new Map()
        const states = batch.states
        for (let k = 0; k < states.length; k++) batch.byId.set(states.id(k) ?? batch.ids.id(k), k)
      }
      const k = batch.byId.get(id)
      if (k !== undefined) return batch.states.copy(k) // a copy: the batch's buffer is reused once it settles
    }
    return undefined
  }

  /**
   * What an agent not in the table must start from, if not the store: its newest state
   * in a commit in flight, when it was dropped while that commit was (see droppedInflight).
   */
  /** Some agent was dropped while a state of its was in flight (`droppedState` may find it). */
  get hasDropped (): boolean {
    return this.droppedInflight.size !== 0
  }

  droppedState (id: string): Uint8Array | null | undefined {
    if (this.droppedInflight.size === 0 || !this.droppedInflight.has(id)) return undefined
    const bytes = this.inflightState(id)
    if (bytes === undefined) this.droppedInflight.delete(id)
    return bytes
  }

  /** The runtime took `cell` out of its table (CommitHost.drop): remember it if a state of it is in flight. */
  dropped (cell: Cell): void {
    // a cell dropped while its batch is built is noted once that batch is in flight
    if (!this.building) this.noteDropped(this.host.idOf(cell))
  }

  private noteDropped (id: string): void {
    if (this.inflight.length !== 0 && this.inflightState(id) !== undefined) this.droppedInflight.set(id, this.inflight[this.inflight.length - 1]!.seq)
  }

  /** Forget dropped agents whose commits have all settled: their state is in the store now. */
  private sweepDropped (): void {
    const d = this.droppedInflight
    if (d.size === 0) return
    if (this.inflight.length === 0) {
      d.clear()
      return
    }
    if (d.size < 1024) return
    const oldest = this.inflight[0]!.seq
    for (const [id, seq] of d) if (seq < oldest) d.delete(id)
  }

  private commitFailed (states: PackedStates, ids: BatchIds, effects: Effect[], err: unknown, quota: QuotaBatch | null): void {
    const host = this.host
    if (quota !== null) host.quotas.failed(quota)
    // a retriable error (a replicated commit whose shard changed owner: ShardUnavailableError)
    // reaches the caller as it is, so that it tries again; anything else is the store failing
    const error = err instanceof ShoalError && err.retriable ? err : new StorageError(`commit failed: ${messageOf(err)}`)
    for (let k = 0; k < states.length; k++) {
      const id = states.id(k) ?? ids.id(k)
      const cell = host.residentCell(id, hashId(id))
      if (cell !== undefined && (cell.flags & kBusy) === 0) host.drop(cell)
    }
    for (const e of effects) {
      if (e.send === null) host.output.reply(e.replyTo, e.callId, false, error.toWire())
    }
  }

  /** Release effects after every earlier commit in flight (replies stay in order). */
  private releaseInOrder (effects: Effect[]): void {
    if (effects.length === 0) return
    if (this.lastCommit === null) this.release(effects)
    else this.lastCommit = this.lastCommit.then(() => this.release(effects))
  }

  private release (effects: Effect[]): void {
    const output = this.host.output
    for (const e of effects) {
      if (e.send !== null) output.send(e.send.id, e.send.hash, e.send.typeIdx, e.send.methodIdx, e.send.payload, e.send.key === 0 ? null : e.send, this.host.idOf(e.cell), e.send.payloadBytes)
      else output.reply(e.replyTo, e.callId, e.ok, e.value)
    }
  }

  /**
   * The storage layer of a delete: everything below is gone. A store wipes the keys it
   * has committed when the batch is written; keys of commits still in flight are not
   * there yet, so they are deleted by name too.
   */
  private wipeOverlay (id: string): StorageOverlay {
    const wipe = new StorageOverlay()
    wipe.wiped = true
    for (const c of this.inflightStorage.get(id) ?? []) c.overlay.forEach((bytes, key) => { if (bytes !== null) wipe.set(key, null) })
    return wipe
  }
}

function failEffects (effects: Effect[], failed: ReadonlyMap<Cell, ShoalError>): Effect[] {
  const kept: Effect[] = []
  for (const e of effects) {
    const error = failed.get(e.cell)
    if (error === undefined) kept.push(e)
    else if (e.send === null) kept.push(new Effect(e.cell, null, e.replyTo, e.callId, false, error.toWire()))
  }
  return kept
}

const kNoLayers: StorageOverlay[] = []

/** BatchIds kept for later batches: as many as commits are usually in flight, and then some. */
const kIdsPooled = 8
/** A batch's ids buffer larger than this (a burst's batch) is not kept. */
const kIdsPooledBytes = 4 << 20

/** Cells whose fields touchCells loads before the commit loop reaches them. */
const kTouchAhead = 16
/** What touchCells' loads folded into (kept so that they are not optimized away). */
let touchSink = 0

/**
 * Load what the commit loop reads of `cells[from]` and the next kTouchAhead − 1 — the
 * cell's flags and hash, the state (not its id's bytes: copied when it was staged) — and
 * return the index after them.
 * The cells of a batch of thousands have left the caches since their turns ran: the
 * commit loop's first reads of each were most of its time (bench/RESULTS.md, issue 13),
 * one miss after the other; loaded here together, the misses overlap.
 */
function touchCells (cells: readonly Cell[], from: number): number {
  const to = Math.min(from + kTouchAhead, cells.length)
  let sink = touchSink
  for (let j = from; j < to; j++) {
    const c = cells[j]!
    sink ^= c.flags ^ c.hash ^ (typeof c.state === 'object' ? 1 : 0)
  }
  touchSink = sink
  return to
}

/** The error of a state that cannot be encoded (at commit, or for a rollback snapshot). */
/**
 * A copy of a state that is a plain object whose own fields are all numbers, strings,
 * booleans or null — what such a state's encode and decode would give back (it holds
 * nothing a copy could share with the live state) — or undefined for any other state.
 */
export function flatCopy (state: unknown): object | undefined {
  if (state === null || typeof state !== 'object') return undefined
  const proto: unknown = Object.getPrototypeOf(state)
  if (proto !== Object.prototype && proto !== null) return undefined
  const from = state as Record<string, unknown>
  const copy: Record<string, unknown> = proto === null ? Object.create(null) as Record<string, unknown> : {}
  for (const k in from) {
    const v = from[k]
    const t = typeof v
    if (t !== 'number' && t !== 'string' && t !== 'boolean' && v !== null) return undefined
    copy[k] = v
  }
  return copy
}

/**
 * Make `to` — a flat copy (`flatCopy`) no one else holds — a flat copy of `state`: true
 * if `state` is flat, has `to`'s prototype and exactly `to`'s fields (a state that lost
 * or gained a field, or is no longer flat, gets a new copy or bytes instead; `to` may
 * then be half written, and is dropped). The fields keep `to`'s order, the state's when
 * it was first copied in this batch: a handler that deleted and re-added a field since
 * gets the same fields and values back, in the older order.
 */
export function copyInto (to: object, state: unknown): boolean {
  if (state === null || typeof state !== 'object' || Object.getPrototypeOf(state) !== Object.getPrototypeOf(to)) return false
  const from = state as Record<string, unknown>
  const into = to as Record<string, unknown>
  let n = 0
  for (const k in from) {
    const v = from[k]
    const t = typeof v
    if ((t !== 'number' && t !== 'string' && t !== 'boolean' && v !== null) || !(k in into)) return false
    into[k] = v
    n++
  }
  for (const _ in into) n--
  return n === 0
}

export function unencodable (id: string, err: unknown): EncodeError {
  return new EncodeError(`the state of agent ${printable(id)} cannot be encoded: ${messageOf(err)}`, { id })
}
