/**
 * `host.agents()` in a cluster: every agent of every host, each once, from any host
 * (docs/cluster.md, "Listing"). The asking host splits the 4096 shards by their owner in
 * its map and asks each owner for its shards (itself directly, the others with CL_LIST
 * over the links); each answers in pages (list-session.ts), one page ahead of what the
 * caller consumed, so a listing of millions streams in bounded memory on both sides.
 *
 * Once each, while shards move. The asking host asks one host per shard at a time. A
 * host lists a shard only while it holds all of its committed records — it serves it, or
 * the shard is leaving it and its range is not dropped yet (Handover.holds) — and reads
 * the shard whole, from one read of its store; otherwise it answers `missing`, and the
 * asking host asks again, by its newest map, when the move is over. What it yields is
 * whole shards: a shard whose pages stop half way (a link dropped) is asked for again
 * and nothing of it was yielded. So each agent that exists through the listing is
 * yielded exactly once; one created or deleted while the listing runs may or may not
 * appear (as on one host). Shards no host holds for `timeoutMs` (their owner is down)
 * end the listing with ShardUnavailableError (retriable): never a silent gap.
 */
import { ShardUnavailableError } from '../../../native-free-core/errors.ts'
import { SHARDS } from '../../../native-free-core/placement/hash.ts'
import { NONE } from '../../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../../native-free-core/placement/shard-map.ts'
import type { FrameSink } from '../../../native-free-core/ring/ring-queue.ts'
import type { AgentQuery } from '../../../src/host/plugin.ts'
import { CL_LIST, CL_LIST_PAGE } from '../wire.ts'
import type { ClusterWire } from '../wire.ts'
import { ListSession } from './list-session.ts'
import type { ListPage, ListSource } from './list-session.ts'

/** Sessions nobody asked for a page for this long are dropped. */
const IDLE_MS = 60_000
/** How long the asking host waits before it asks again for shards that were moving. */
const RETRY_MS = 50

export interface ListingParts {
  readonly self: string
  readonly wire: ClusterWire
  readonly links: { writer (peer: string): FrameSink }
  readonly source: ListSource
  /** The latest shard map, if any. */
  map (): ShardMap | undefined
  /** Ids resident here that the store may not hold yet (PluginHost.unsavedIds). */
  unsavedIds (prefix: string): Promise<string[]>
  /** How long a listing may wait for a page, and for a shard to be held somewhere. */
  readonly timeoutMs: number
  /** Bytes of ids per page. */
  readonly pageBytes: number
}

interface Waiting {
  readonly peer: string
  resolve (page: ListPage): void
  reject (error: Error): void
}

export class ClusterListing {
  private readonly parts: ListingParts
  /** Sessions this host answers, by `${peer}\0${token}`. */
  private readonly sessions = new Map<string, Promise<ListSession>>()
  /** Pages this host waits for, by token. */
  private readonly waiting = new Map<number, Waiting>()
  private nextToken = 0
  private sweeper: ReturnType<typeof setInterval> | null = null
  /** Figures for stats. */
  served = 0
  pagesServed = 0

  constructor (parts: ListingParts) {
    this.parts = parts
  }

  // ---- the asking host ---------------------------------------------------------

  async * list (query: AgentQuery): AsyncGenerator<string, void, undefined> {
    // how long shards may stay unlisted: from the first round that made no progress
    let deadline: number | null = null
    let pending: number[] = Array.from({ length: SHARDS }, (_, s) => s)
    let why = ''
    while (pending.length !== 0) {
      const map = this.parts.map()
      const byOwner = new Map<string, number[]>()
      const unowned: number[] = []
      for (const s of pending) {
        const owner = map === undefined || map.owner[s] === NONE ? undefined : map.hosts[map.owner[s]!]
        if (owner === undefined) {
          unowned.push(s)
          continue
        }
        let group = byOwner.get(owner)
        if (group === undefined) byOwner.set(owner, group = [])
        group.push(s)
      }
      if (unowned.length !== 0) why = `no host owns shard ${unowned[0]} in this host's map`
      const again: number[] = [...unowned]
      let progress = false
      const owners = [...byOwner.keys()].sort((a, b) => a === this.parts.self ? -1 : b === this.parts.self ? 1 : a < b ? -1 : 1)
      for (const owner of owners) {
        const shards = byOwner.get(owner)!
        const finished = new Set<number>()
        let held: string[] = []
        try {
          for await (const page of this.pages(owner, query, shards)) {
            const all = held.length === 0 ? page.ids : [...held, ...page.ids]
            const whole = all.length - page.partial
            for (let i = 0; i < whole; i++) yield all[i]!
            held = page.partial === 0 ? [] : all.slice(whole)
            for (const s of page.complete) finished.add(s)
            if (page.complete.length !== 0) progress = true
            for (const s of page.missing) {
              finished.add(s)
              again.push(s)
              why = `shard ${s} was moving`
            }
          }
        } catch (err) {
          why = (err as Error).message
        }
        for (const s of shards) if (!finished.has(s)) again.push(s)
      }
      pending = again
      if (pending.length === 0) return
      if (progress || deadline === null) deadline = Date.now() + this.parts.timeoutMs
      else if (Date.now() >= deadline) {
        throw new ShardUnavailableError(`host.agents(): ${pending.length} shard(s) could not be listed within ${this.parts.timeoutMs} ms (${why}): retry`, { shard: pending[0]! })
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
    }
  }

  /** The pages of one host's part: this host's own, or another's over its link, one page ahead. */
  private async * pages (owner: string, query: AgentQuery, shards: number[]): AsyncGenerator<ListPage, void, undefined> {
    if (owner === this.parts.self) {
      const session = await this.open(query, shards)
      for (;;) {
        const page = session.page(this.parts.pageBytes)
        yield page
        if (page.done) return
      }
    }
    const token = this.nextToken = (this.nextToken + 1) >>> 0
    let next = this.ask(owner, token, { shards, prefix: query.prefix, type: query.type })
    let done = false
    try {
      for (;;) {
        const page = await next
        done = page.done
        if (!done) next = this.ask(owner, token, { next: true })
        yield page
        if (done) return
      }
    } finally {
      if (!done) {
        // the caller stopped, or a page failed: stop the session there (a page asked for ahead is dropped)
        this.waiting.get(token)?.reject(new Error('the listing stopped'))
        this.write(owner, CL_LIST, token, { cancel: true })
      }
    }
  }

  /** Ask `peer` for a page; the promise is already handled, so a page that fails while the caller is busy is not an unhandled rejection. */
  private ask (peer: string, token: number, request: object): Promise<ListPage> {
    const page = this.sendRequest(peer, token, request)
    page.catch(() => {})
    return page
  }

  private sendRequest (peer: string, token: number, request: object): Promise<ListPage> {
    return new Promise<ListPage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(token)
        reject(new Error(`no page from ${peer} within ${this.parts.timeoutMs} ms`))
      }, this.parts.timeoutMs)
      const settle = <T>(f: (v: T) => void) => (v: T): void => {
        clearTimeout(timer)
        this.waiting.delete(token)
        f(v)
      }
      this.waiting.set(token, { peer, resolve: settle(resolve), reject: settle(reject) })
      if (!this.write(peer, CL_LIST, token, request)) this.waiting.get(token)?.reject(new Error(`the link to ${peer} cannot take the request`))
    })
  }

  /** A CL_LIST_PAGE frame. */
  page (peer: string, token: number, value: unknown): void {
    const w = this.waiting.get(token)
    if (w === undefined || w.peer !== peer) return
    const v = value as Partial<ListPage> & { error?: string } | null
    if (v === null || typeof v !== 'object' || typeof v.error === 'string' || !Array.isArray(v.ids) || !Array.isArray(v.complete) || !Array.isArray(v.missing)) {
      w.reject(new Error(`${peer} could not list: ${String(v?.error ?? 'a malformed page')}`))
      return
    }
    w.resolve({ ids: v.ids, partial: Number(v.partial) || 0, complete: v.complete, missing: v.missing, done: v.done === true })
  }

  // ---- the host asked --------------------------------------------------------------

  /** A CL_LIST frame: open a session, or the next page of one, or stop one. */
  request (peer: string, token: number, value: unknown): void {
    const key = `${peer}\u0000${token}`
    const v = value as { shards?: unknown, prefix?: unknown, type?: unknown, next?: unknown, cancel?: unknown } | null
    if (v === null || typeof v !== 'object') return
    if (v.cancel === true) {
      this.sessions.delete(key)
      return
    }
    let session = this.sessions.get(key)
    if (session === undefined) {
      if (!Array.isArray(v.shards) || typeof v.prefix !== 'string' || !(v.type === null || typeof v.type === 'string')) {
        this.write(peer, CL_LIST_PAGE, token, { error: 'not a listing request' })
        return
      }
      const shards = (v.shards as unknown[]).filter((s): s is number => Number.isInteger(s) && (s as number) >= 0 && (s as number) < SHARDS)
      session = this.open({ prefix: v.prefix, type: v.type }, shards)
      this.sessions.set(key, session)
      this.served++
      this.sweep()
    }
    session.then((s) => {
      if (this.sessions.get(key) !== session) return // cancelled meanwhile
      const page = s.page(this.parts.pageBytes)
      if (page.done) this.sessions.delete(key)
      this.pagesServed++
      this.write(peer, CL_LIST_PAGE, token, page)
    }, (err: unknown) => {
      this.sessions.delete(key)
      this.write(peer, CL_LIST_PAGE, token, { error: (err as Error).message })
    })
  }

  /** The link to `peer` dropped: its sessions end, and pages waited for from it fail (their shards are asked again). */
  down (peer: string): void {
    for (const key of [...this.sessions.keys()]) if (key.startsWith(`${peer}\u0000`)) this.sessions.delete(key)
    for (const w of [...this.waiting.values()]) if (w.peer === peer) w.reject(new Error(`the link to ${peer} dropped`))
  }

  close (): void {
    if (this.sweeper !== null) clearInterval(this.sweeper)
    this.sweeper = null
    this.sessions.clear()
    for (const w of [...this.waiting.values()]) w.reject(new Error('the host is closing'))
  }

  private async open (query: AgentQuery, shards: readonly number[]): Promise<ListSession> {
    return new ListSession(query, shards, this.parts.source, await this.parts.unsavedIds(query.prefix))
  }

  private sweep (): void {
    if (this.sweeper !== null) return
    this.sweeper = setInterval(() => {
      const now = Date.now()
      for (const [key, session] of this.sessions) {
        void session.then((s) => { if (now - s.touched > IDLE_MS) this.sessions.delete(key) }, () => {})
      }
    }, IDLE_MS / 4)
    this.sweeper.unref()
  }

  private write (peer: string, kind: number, token: number, value: unknown): boolean {
    try {
      this.parts.wire.write(this.parts.links.writer(peer), kind, token, value)
      return true
    } catch {
      return false
    }
  }
}
