/**
 * Calls and follows that came from another host, as this host's threads know them. A
 * call's reply address (`replyTo` thread, call id) and a follow's id mean something only
 * on the host that made them, so the main thread gives each such frame a proxy id of its
 * own (≥ 2^31: a range the host's own calls and follows never use) before it goes onto a
 * ring, and maps the reply or state that comes back to the sink it came from and the id
 * the other host knows.
 *
 * A proxied call is forgotten when its reply passes; a proxied follow when its
 * subscription ends (an error state, or MSG_UNFOLLOW from the follower). When the thread
 * that runs the agent dies, or the sink goes away (its link dropped), the proxies routed
 * through it are answered with an error (or dropped: no one is left to tell).
 */

/** Where the result of a frame that came from another host goes. */
export interface ResultSink {
  /**
   * A result frame (FRAME_REPLY, FRAME_STATE) as its ring bytes, its id already set back
   * to the one the other host knows: a view, valid during the call.
   */
  result (frame: Buffer): void
}

export const PROXY_BIT = 0x80000000

export class Proxy {
  readonly sink: ResultSink
  /** The id the other host knows (its call id or follow id). */
  readonly remoteId: number
  readonly follow: boolean
  /** The home thread the frame went to, and that thread's incarnation then. */
  readonly thread: number
  readonly epoch: number

  constructor (sink: ResultSink, remoteId: number, follow: boolean, thread: number, epoch: number) {
    this.sink = sink
    this.remoteId = remoteId
    this.follow = follow
    this.thread = thread
    this.epoch = epoch
  }
}

export class Proxies {
  private readonly byId = new Map<number, Proxy>()
  /** Follow proxies by sink and remote follow id, for the follower's MSG_UNFOLLOW. */
  private readonly follows = new Map<ResultSink, Map<number, number>>()
  private next = 0
  private calls_ = 0

  get size (): number {
    return this.byId.size
  }

  /** Calls from other hosts not answered yet (follows left out: they last until unfollowed). */
  get calls (): number {
    return this.calls_
  }

  add (sink: ResultSink, remoteId: number, follow: boolean, thread: number, epoch: number): number {
    let id: number
    do {
      this.next = (this.next + 1) & 0x7fffffff
      id = (PROXY_BIT | this.next) >>> 0
    } while (this.byId.has(id))
    this.byId.set(id, new Proxy(sink, remoteId, follow, thread, epoch))
    if (follow) {
      let bySink = this.follows.get(sink)
      if (bySink === undefined) this.follows.set(sink, bySink = new Map())
      bySink.set(remoteId, id)
    } else {
      this.calls_++
    }
    return id
  }

  get (id: number): Proxy | undefined {
    return this.byId.get(id)
  }

  /** The proxy id of a follow `sink` made with `remoteId`, if it is still subscribed. */
  followOf (sink: ResultSink, remoteId: number): number | undefined {
    return this.follows.get(sink)?.get(remoteId)
  }

  delete (id: number): Proxy | undefined {
    const p = this.byId.get(id)
    if (p === undefined) return undefined
    this.byId.delete(id)
    if (p.follow) {
      const bySink = this.follows.get(p.sink)
      bySink?.delete(p.remoteId)
      if (bySink?.size === 0) this.follows.delete(p.sink)
    } else {
      this.calls_--
    }
    return p
  }

  /** Remove and return the proxies `select` picks. */
  take (select: (p: Proxy) => boolean): Array<[number, Proxy]> {
    const taken: Array<[number, Proxy]> = []
    for (const [id, p] of this.byId) if (select(p)) taken.push([id, p])
    for (const [id] of taken) this.delete(id)
    return taken
  }
}
