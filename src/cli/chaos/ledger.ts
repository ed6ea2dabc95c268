/**
 * What the driver did, op by op: every attempt sent (through which host), the answer
 * that acknowledged it, the errors seen. The checker (checker.ts) holds the agents'
 * final state against it. An attempt whose answer never came (the host it went through
 * was killed or stopped) counts as an attempt: it may have been applied.
 */
export type OpKind = 'add' | 'transfer'

export interface OpRecord {
  readonly id: string
  readonly kind: OpKind
  /** The counter's key (add) or the debited account's key (transfer). */
  readonly key: string
  /** transfer: the credited account, and the amount. */
  readonly to?: string
  readonly amount?: number
  attempts: number
  /** Each attempt: the host it went through, ms from the load's start, and how it ended ('ack', an error's name, '' while open). */
  readonly tries: Array<{ via: string, atMs: number, endMs: number, outcome: string }>
  acked: boolean
  /** The answer that acknowledged it (add: the count; transfer: the balance). */
  value?: unknown
}

export interface ErrorTally {
  /** Error name or code → count. */
  readonly retriable: Map<string, number>
  /** Non-retriable errors: each one is a finding (a chaos run must see none). */
  readonly fatal: Array<{ readonly op: string, readonly via: string, readonly error: string }>
}

export class Ledger {
  readonly ops = new Map<string, OpRecord>()
  readonly errors: ErrorTally = { retriable: new Map(), fatal: [] }
  private next = 0

  open (kind: OpKind, key: string, transfer?: { to: string, amount: number }): OpRecord {
    const id = `o${++this.next}`
    const r: OpRecord = { id, kind, key, attempts: 0, tries: [], acked: false, ...(transfer ?? {}) }
    this.ops.set(id, r)
    return r
  }

  /** One op's story, one line per attempt: for a violation's evidence. */
  story (id: string): string {
    const r = this.ops.get(id)
    if (r === undefined) return `${id}: never attempted`
    const tries = r.tries.map((t) => `${t.via} ${t.atMs}–${t.endMs} ms ${t.outcome}`).join(', ')
    return `${id} ${r.kind} ${r.key}${r.to === undefined ? '' : ` → ${r.to}`}: ${tries}${r.acked ? ` → ${String(r.value)}` : ''}`
  }

  retriable (name: string): void {
    this.errors.retriable.set(name, (this.errors.retriable.get(name) ?? 0) + 1)
  }

  fatal (op: string, via: string, error: string): void {
    this.errors.fatal.push({ op, via, error })
  }

  counts (): { ops: number, acked: number, attempts: number, adds: number, transfers: number } {
    let acked = 0
    let attempts = 0
    let adds = 0
    for (const r of this.ops.values()) {
      if (r.acked) acked++
      attempts += r.attempts
      if (r.kind === 'add') adds++
    }
    return { ops: this.ops.size, acked, attempts, adds, transfers: this.ops.size - adds }
  }
}
