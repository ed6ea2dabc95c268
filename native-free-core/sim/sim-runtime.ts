/**
 * The shard runtime as the simulator runs it: the real `ShardRuntime`, unchanged, with
 * two observation points so the trace can say what time did. A timer or reminder turn
 * is started by the runtime itself, inside `advanceTo`, through its own `deliver`; idle
 * passivation through `passivate` (its TimerHost side). Overriding those two public
 * methods sees both without a hook in the runtime, and changes nothing they do.
 */
import { parseId } from '../agent/agent-id.ts'
import type { Cell } from '../runtime/cell.ts'
import { MSG_REMINDER, MSG_TIMER } from '../agent/envelope.ts'
import type { Envelope } from '../agent/envelope.ts'
import { ShardRuntime } from '../runtime/shard-runtime.ts'
import type { ShardRuntimeOptions } from '../runtime/shard-runtime.ts'

export interface TimeObserver {
  /** A `timeout` (name null) or `reminder(name)` turn is about to run for agent `id`. */
  timerTurn (id: string, name: string | null): void
  /** Agent `id` is being passivated for idleness. */
  passivated (id: string): void
}

export class SimRuntime extends ShardRuntime {
  private readonly observer: TimeObserver

  constructor (options: ShardRuntimeOptions, observer: TimeObserver) {
    super(options)
    this.observer = observer
  }

  override deliver (env: Envelope): void {
    if (env.kind === MSG_TIMER) this.observer.timerTurn(env.id, null)
    else if (env.kind === MSG_REMINDER) this.observer.timerTurn(env.id, String(env.payload))
    super.deliver(env)
  }

  override passivate (cell: Cell): void {
    this.observer.passivated(this.idOf(cell))
    super.passivate(cell)
  }

  /** The agent's type defines `timeout` or `reminder`: its turns may arm what a real crash would lose. */
  static hasTimers (id: string, runtime: ShardRuntime): boolean {
    const info = runtime.registry.get(parseId(id).type)
    return info !== undefined && (info.timeoutMethod !== null || info.reminderMethod !== null)
  }
}
