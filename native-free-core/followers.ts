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
 * again to the new worker (src/follow.ts), which starts with the current state.
 */

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

}
