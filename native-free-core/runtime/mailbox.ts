/**
 * FIFO of messages waiting for a busy agent (one whose async handler has not settled).
 * Turns never interleave: while an agent is busy, everything sent to it waits here,
 * and other agents keep running. An array with a moving head, compacted when half
 * consumed, so a hot agent with a long backlog stays O(1) per message.
 */
export class Mailbox<T> {
  private items: T[] = []
  private head = 0

  get size (): number {
    return this.items.length - this.head
  }

  push (item: T): void {
    this.items.push(item)
  }

  shift (): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]!
    this.items[this.head++] = undefined as T // drop the reference for the GC
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  drain (): T[] {
    const rest = this.items.slice(this.head)
    this.items = []
    this.head = 0
    return rest
  }
}
