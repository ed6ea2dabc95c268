/**
 * The simulator's store: committed states in memory, plus the crash fault.
 *
 * A crash between a turn and its commit is injected here, with no hook in the shard
 * runtime: when the simulator decides that a commit crashes, `commit` throws. The
 * runtime then does what it does for any failed commit — drops the cells of the batch
 * (their next message reloads the last committed state), and never releases the
 * batch's replies and sends — which is what a host that died before the commit leaves
 * behind. The replies it fails with StorageError are caught by the simulator, which
 * records what a caller of a crashed host sees instead (WorkerCrashedError).
 *
 * States are kept as the encoded bytes the runtime handed over (the codec gives fresh
 * bytes per encode and the runtime only decodes what `getState` returns, so nothing
 * mutates them), and the store keeps a running, order-free hash of its contents for
 * explore's visited-state set (state-hash.ts). Memory is not a concern here: a
 * simulation holds a handful of agents.
 */
import type { Store, WriteBatch } from '../store.ts'
import { Hash2 } from './state-hash.ts'

/** Thrown by `commit` to simulate a crash; never escapes the simulator. */
export class SimulatedCrash extends Error {
  constructor () {
    super('simulated crash between the turn and its commit')
    this.name = 'SimulatedCrash'
  }
}

export class SimStore implements Store {
  readonly durable = true
  /** Asked before each commit; true makes the commit crash. */
  crashes: (batch: WriteBatch) => boolean = () => false
  /** Called after each commit, with the ids it wrote. */
  committed: (ids: readonly string[]) => void = () => {}
  private readonly states = new Map<string, Uint8Array>()
  private readonly entryHash = new Map<string, Hash2>()
  private readonly sum = new Hash2(0, 0)

  getState (id: string): Uint8Array | undefined {
    return this.states.get(id)
  }

  commit (batch: WriteBatch): undefined {
    if (this.crashes(batch)) throw new SimulatedCrash()
    const ids: string[] = []
    for (const [id, bytes] of batch.states) {
      const old = this.entryHash.get(id)
      if (old !== undefined) this.sum.subtract(old)
      if (bytes === null) {
        this.states.delete(id)
        this.entryHash.delete(id)
      } else {
        const h = Hash2.ofString(id).chainBytes(bytes)
        this.states.set(id, bytes)
        this.entryHash.set(id, h)
        this.sum.add(h)
      }
      ids.push(id)
    }
    this.committed(ids)
    return undefined
  }

  * ids (prefix: string): Iterable<string> {
    const found: string[] = []
    for (const id of this.states.keys()) if (id.startsWith(prefix)) found.push(id)
    yield * found.sort()
  }

  has (id: string): boolean {
    return this.states.has(id)
  }

  /** Copy the committed states into `into` (a fresh store); the bytes are shared, being immutable. */
  copyTo (into: SimStore): void {
    for (const [id, v] of this.states) into.states.set(id, v)
    for (const [id, h] of this.entryHash) into.entryHash.set(id, h)
    into.sum.a = this.sum.a
    into.sum.b = this.sum.b
  }

  /** The order-free hash of every committed state. */
  hash (): Hash2 {
    return new Hash2(this.sum.a, this.sum.b)
  }

  close (): void {}
}
