/**
 * A home thread's part in shards leaving and arriving (docs/cluster.md): the main thread
 * drives a move with FRAME_CONTROL frames on the ring to the shard's home thread, so each
 * step is ordered with the messages around it.
 *
 *   main → home   { op: 'fence' }                     everything before it has been run or forwarded
 *   home → main   { op: 'fenced' }
 *   main → home   { op: 'release', shards }           the shards are FORWARD already: no new turn starts;
 *   home → main   { op: 'released', timeouts }        answered once their turns and commits are done and
 *                                                     their agents passivated, with their armed timeouts
 *   main → home   { op: 'adopt', shards, timeouts }   the shards are here: run what was kept, serve them
 *   home → main   { op: 'adopted' }
 *
 * While a shard is ARRIVING the home thread keeps its frames in two lists: those the main
 * thread held for it (marked KIND_HELD; they were sent first) and those that came here
 * directly. On 'adopt' it runs the held ones, then its own, then serves the shard.
 */
import { shardOf } from '../../native-free-core/placement/hash.ts'
import { SHARD_LOCAL } from '../../native-free-core/placement/shard-state.ts'
import type { ShardStates } from '../../native-free-core/placement/shard-state.ts'
import type { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { MovedTimeout } from '../../native-free-core/time/agent-timers.ts'
import { FrameBuffer } from './frame-buffer.ts'
import { FRAME_CONTROL, FrameReader, KIND_HELD } from './frame-codec.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { MSG_FORGET } from '../../native-free-core/agent/envelope.ts'

export type ControlOp =
  | { readonly op: 'fence' }
  | { readonly op: 'fenced' }
  | { readonly op: 'release', readonly shards: readonly number[] }
  | { readonly op: 'released', readonly timeouts: readonly MovedTimeout[] }
  | { readonly op: 'adopt', readonly shards: readonly number[], readonly timeouts: readonly MovedTimeout[] }
  | { readonly op: 'adopted' }
  /** Dedup mode in a cluster: durable sends this thread applied, committed (thread → main, batched per pass). */
  | { readonly op: 'applied', readonly acks: ReadonlyArray<[number, string, number, string, number]> }
  /**
   * Replicas (cluster): a commit journal of this thread, committed here (commit-journal.ts;
   * thread → main); answered with 'replicated' once the shards' replicas have it, or with
   * the error that keeps the commit's replies back.
   */
  | { readonly op: 'replicate', readonly journal: Uint8Array }
  | { readonly op: 'replicated', readonly error: WireError | null }
  /**
   * Replicas: the local transaction of a commit whose journal went out failed (thread →
   * main): the shards' streams start over, so that no replica keeps a write lost here.
   */
  | { readonly op: 'commit-failed', readonly shards: readonly number[] }
  /** Replicas (main → thread): answer 'committed' once every commit this thread queued before it has committed (or failed). */
  | { readonly op: 'commits' }
  | { readonly op: 'committed' }

/** What the handover needs from its thread's loop. */
export interface HandoverLoop {
  /** A FRAME_CONTROL answer to thread `to`. */
  sendResult (to: number, kind: number, id: number, ok: boolean, value: unknown): boolean
  /** The host is past its serving deadline now (mesh.ts `servingUntil`). */
  pastServingDeadline (): boolean
}

interface Release {
  readonly from: number
  readonly token: number
  readonly shards: ReadonlySet<number>
}

export class ShardHandover {
  private readonly loop: HandoverLoop
  private readonly states: ShardStates
  private readonly runtime: ShardRuntime | null
  /** Frames kept per arriving shard: [held by the main thread, come here directly]. */
  private readonly kept = new Map<number, [FrameBuffer, FrameBuffer]>()
  private releases: Release[] = []

  constructor (loop: HandoverLoop, states: ShardStates, runtime: ShardRuntime | null) {
    this.loop = loop
    this.states = states
    this.runtime = runtime
  }

  /** Releases waiting for their shards' turns and commits. */
  get pending (): boolean {
    return this.releases.length !== 0
  }

  /** Keep a copy of a frame for an arriving shard. */
  keep (shard: number, frame: Uint8Array, held: boolean): void {
    let lists = this.kept.get(shard)
    if (lists === undefined) this.kept.set(shard, lists = [new FrameBuffer(256), new FrameBuffer(256)])
    lists[held ? 0 : 1].push(frame)
  }

  /** A FRAME_CONTROL request from thread `from` (answers go back to it). */
  control (from: number, token: number, msg: ControlOp): void {
    switch (msg.op) {
      case 'fence':
        this.loop.sendResult(from, FRAME_CONTROL, token, true, { op: 'fenced' } satisfies ControlOp)
        return
      case 'release':
        this.releases.push({ from, token, shards: new Set(msg.shards) })
        this.check()
        return
      case 'adopt':
        this.adopt(msg.shards, msg.timeouts)
        this.loop.sendResult(from, FRAME_CONTROL, token, true, { op: 'adopted' } satisfies ControlOp)
        return
      default:
        throw new Error(`unexpected control frame ${msg.op} on a home thread`)
    }
  }

  /** After each pass: answer the releases whose shards have nothing in a turn or in flight any more. */
  check (): void {
    if (this.releases.length === 0) return
    const waiting: Release[] = []
    for (const r of this.releases) {
      const picks = (hash: number): boolean => r.shards.has(shardOf(hash))
      const rt = this.runtime
      if (rt !== null && !rt.releasable(picks)) {
        waiting.push(r)
        continue
      }
      const timeouts = rt === null ? [] : rt.release(picks)
      this.loop.sendResult(r.from, FRAME_CONTROL, r.token, true, { op: 'released', timeouts } satisfies ControlOp)
    }
    this.releases = waiting
  }

  private adopt (shards: readonly number[], timeouts: readonly MovedTimeout[]): void {
    const set = new Set(shards)
    const rt = this.runtime
    for (const s of shards) this.states[s] = SHARD_LOCAL
    if (rt !== null) rt.adopt((hash) => set.has(shardOf(hash)), timeouts)
    // past the serving deadline (the host stood still past its lease while the shard arrived):
    // what was kept goes to the main thread's router, in the same order, which forwards it or
    // fails it — a thread past its deadline starts no turn, from a ring or from a hold
    const lapsed = this.loop.pastServingDeadline()
    for (const s of shards) {
      const lists = this.kept.get(s)
      if (lists === undefined) continue
      this.kept.delete(s)
      // forgets last: a copy of the send they forget may be kept behind them
      if (rt !== null) for (const forgets of [false, true]) for (const list of lists) replay(list, rt, forgets, lapsed)
    }
  }
}

/** Run kept frames, in order, on the runtime (their shard is served now): the forgets, or all the others; `forward`: to the router instead. */
function replay (frames: FrameBuffer, rt: ShardRuntime, forgets: boolean, forward: boolean): void {
  if (frames.count === 0) return
  const bytes = frames.bytes
  const reader = new FrameReader(bytes.length)
  reader.scratch.set(bytes, 0)
  let p = 0
  const i32 = reader.i32
  while (p < bytes.length) {
    const len = i32[p >> 2]!
    const o = p + 4
    p = o + ((len + 3) & ~3)
    reader.scratch[o] = reader.scratch[o]! & ~KIND_HELD
    if ((reader.scratch[o] === MSG_FORGET) !== forgets) continue
    try {
      if (forward) rt.output.forward!(reader.message(o, len))
      else rt.deliver(reader.message(o, len))
    } catch (err) {
      rt.output.agentError?.('', '', { code: 'SHOAL_ERR_DECODE', message: `a kept frame does not decode: ${String(err)}` })
    }
  }
}
