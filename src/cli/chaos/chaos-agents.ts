/**
 * The agents a chaos run drives (`shoal chaos`, test/cluster/chaos.test.ts). Every host
 * process loads this module by URL, so it holds definitions only.
 *
 *   chaos-counter   `add(opId)` appends the op id and answers the count. It does NOT
 *                   deduplicate: the driver retries an op with the same id, so an id
 *                   appears at most as often as it was attempted — more is a double
 *                   apply by the engine; an acknowledged id missing is a lost update
 *                   (two activations, one overwriting the other, or a lost commit).
 *   chaos-account   starts with START; `transfer({ to, amount, opId })` debits and
 *                   `ctx.send`s a durable `credit` to `to` (often on another host). A
 *                   transfer is idempotent by op id (a retried transfer debits once),
 *                   so each transfer in `out` must be matched by exactly one credit in
 *                   its receiver's `credits`: the engine's effectively-once sends. The
 *                   sum of balances is conserved exactly once sends have drained.
 */
import { defineAgent } from '../../../native-free-core/index.ts'
import { DEFAULT_QUOTA, idString } from '../../../native-free-core/agent/agent-id.ts'
import { hashId, shardOf } from '../../../native-free-core/placement/hash.ts'

/** Every account's opening balance. */
export const START = 1000

export const COUNTER = 'chaos-counter'
export const ACCOUNT = 'chaos-account'

/** The shard an agent of this module lives in (the default quota). */
export function shardOfAgent (type: string, key: string): number {
  return shardOf(hashId(idString(DEFAULT_QUOTA, type, key)))
}

export interface TransferOp {
  readonly to: string
  readonly amount: number
  readonly opId: string
}

export interface AccountState {
  balance: number
  /** Transfers applied here: op id → [to, amount]. */
  out: Record<string, [string, number]>
  /** Op ids of the credits applied here, in order, repeats kept. */
  credits: string[]
  /** Transfers asked again after they applied (driver retries): not an error. */
  repeats: number
}

export const chaosCounter = defineAgent({
  type: COUNTER,
  initial: () => ({ ops: [] as string[] }),
  commands: {
    add (state, opId: string) {
      state.ops.push(opId)
      return state.ops.length
    }
  },
  queries: {
    ops (state) { return state.ops }
  }
})

export const chaosAccount = defineAgent({
  type: ACCOUNT,
  initial: (): AccountState => ({ balance: START, out: {}, credits: [], repeats: 0 }),
  commands: {
    transfer (state, op: TransferOp, ctx) {
      if (state.out[op.opId] !== undefined) {
        state.repeats++
        return state.balance
      }
      state.balance -= op.amount
      state.out[op.opId] = [op.to, op.amount]
      ctx.send({ type: ACCOUNT, key: op.to }, 'credit', { opId: op.opId, amount: op.amount })
      return state.balance
    },
    credit (state, c: { opId: string, amount: number }) {
      state.credits.push(c.opId)
      state.balance += c.amount
    }
  },
  queries: {
    state (state) { return state }
  }
})
