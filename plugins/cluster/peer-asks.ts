/**
 * Questions one host asks another over the cluster's links, for read-only figures: the
 * dashboard (plugins/dashboard/) asks every member for its own figures, and the owner of
 * an agent for what it knows of it. Two cluster frames (wire.ts):
 *
 *   CL_ASK     id = token   { topic, value }           asker → peer
 *   CL_ANSWER  id = token   { ok, value } | { ok, error }   peer → asker, on the same link
 *
 * What it relies on and promises:
 * - Links are authenticated with the cluster's secret, so an ask comes from a member.
 *   A host answers only the topics its plugins registered with `answer`; any other topic
 *   is answered `ok: false` — nothing else of the host can be reached this way.
 * - Asks and answers ride the link batches beside the engine's frames (in order per link,
 *   flushed per turn); an answer that cannot be encoded or is over the wire's frame limit
 *   is answered with an error instead.
 * - An ask rejects when its peer is unknown or its link cannot take it (the link's own
 *   error: InvalidArgumentError, LinkUnavailableError), when the link goes down before
 *   the answer (LinkUnavailableError), after its timeout (TimeoutError), with the peer's
 *   message when the peer refused it (PeerAskError), and when the plugin closes
 *   (HostClosedError); a late answer is dropped.
 */
import type { FrameSink } from '../../native-free-core/ring/ring-queue.ts'
import { HostClosedError, InvalidArgumentError, LinkUnavailableError, PeerAskError, ShoalError, TimeoutError, messageOf } from '../../native-free-core/errors.ts'
import type { ClusterView } from '../../src/host/cluster-view.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { CL_ANSWER, CL_ASK } from './wire.ts'
import type { ClusterWire } from './wire.ts'

/** What one host tells of its etcd lease; null with a static list (no lease). */
export interface LeaseInfo {
  /** etcd's lease id (decimal), once granted. */
  readonly id: string | null
  readonly ttlS: number
  /** No renewal succeeded within half the TTL: this host serves nothing until one does. */
  readonly fenced: boolean
}

/**
 * What the cluster plugin shares with the plugins set up beside it (`host.use('cluster-peers')`):
 * the view, the shard map, this host's lease, and asks to the other members.
 */
export interface ClusterPeers {
  /** This host's id. */
  readonly self: string
  /** `host.cluster`. */
  readonly view: ClusterView
  /** The shard map as this host has applied it, once there is one. */
  map (): ShardMap | undefined
  /** The member holding leadership (etcd), or undefined. */
  leader (): string | undefined
  /** This host's lease (etcd), or null with a static list. */
  lease (): LeaseInfo | null
  /** Ask `peer` the question registered there under `topic`; resolves with its answer. Default timeout 2,000 ms. */
  ask (peer: string, topic: string, value?: unknown, options?: { readonly timeoutMs?: number }): Promise<unknown>
  /** Answer `topic` on this host (one handler per topic; it may return a promise). Read-only questions only. */
  answer (topic: string, handler: (value: unknown, peer: string) => unknown): void
}

interface Waiting {
  readonly peer: string
  readonly topic: string
  readonly resolve: (value: unknown) => void
  readonly reject: (error: Error) => void
  readonly timer: NodeJS.Timeout
}

const DEFAULT_TIMEOUT_MS = 2_000

export class PeerAsks {
  private readonly wire: ClusterWire
  private readonly writer: (peer: string) => FrameSink
  private readonly handlers = new Map<string, (value: unknown, peer: string) => unknown>()
  private readonly waiting = new Map<number, Waiting>()
  private nextToken = 1
  private closed = false
  /** Asks answered here, and asks refused (unknown topic, handler threw). */
  answered = 0
  refused = 0

  constructor (wire: ClusterWire, writer: (peer: string) => FrameSink) {
    this.wire = wire
    this.writer = writer
  }

  ask (peer: string, topic: string, value: unknown, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<unknown> {
    if (this.closed) return Promise.reject(new HostClosedError('the cluster plugin is closed'))
    const token = this.nextToken
    this.nextToken = this.nextToken >= 0x7fffffff ? 1 : this.nextToken + 1
    return new Promise((resolve, reject) => {
      try {
        this.wire.write(this.writer(peer), CL_ASK, token, { topic, value })
      } catch (err) {
        reject(err instanceof ShoalError ? err : new LinkUnavailableError(`cannot ask ${peer} (${topic}): ${messageOf(err)}`, { peer, reason: 'send' }))
        return
      }
      const timer = setTimeout(() => {
        if (this.waiting.delete(token)) reject(new TimeoutError(`${peer} did not answer ${topic} within ${timeoutMs} ms`, { peer, topic, timeoutMs }))
      }, timeoutMs)
      timer.unref()
      this.waiting.set(token, { peer, topic, resolve, reject, timer })
    })
  }

  answer (topic: string, handler: (value: unknown, peer: string) => unknown): void {
    if (typeof topic !== 'string' || topic === '') throw new InvalidArgumentError(`an ask topic must be a non-empty string (got ${JSON.stringify(topic)})`)
    if (this.handlers.has(topic)) throw new InvalidArgumentError(`the ask topic ${JSON.stringify(topic)} is answered already`, { topic })
    this.handlers.set(topic, handler)
  }

  /** A CL_ASK or CL_ANSWER frame from `peer`. */
  onFrame (peer: string, kind: number, id: number, value: unknown): void {
    if (kind === CL_ANSWER) {
      const w = this.waiting.get(id)
      if (w === undefined || w.peer !== peer) return // late (timed out), or not ours
      this.waiting.delete(id)
      clearTimeout(w.timer)
      const a = value as { ok?: unknown, value?: unknown, error?: unknown }
      if (a?.ok === true) w.resolve(a.value)
      else w.reject(new PeerAskError(`${peer}: ${typeof a?.error === 'string' ? a.error : 'refused'}`, { peer, topic: w.topic }))
      return
    }
    const q = value as { topic?: unknown, value?: unknown }
    const handler = typeof q?.topic === 'string' ? this.handlers.get(q.topic) : undefined
    if (handler === undefined) {
      this.refused++
      this.reply(peer, id, { ok: false, error: `no answer to ${JSON.stringify(q?.topic)} here` })
      return
    }
    let result: unknown
    try {
      result = handler(q.value, peer)
    } catch (err) {
      this.refused++
      this.reply(peer, id, { ok: false, error: messageOf(err) })
      return
    }
    Promise.resolve(result).then(
      (v) => { this.answered++; this.reply(peer, id, { ok: true, value: v }) },
      (err: unknown) => { this.refused++; this.reply(peer, id, { ok: false, error: messageOf(err) }) })
  }

  private reply (peer: string, id: number, answer: { ok: boolean, value?: unknown, error?: string }): void {
    if (this.closed) return
    let sink: FrameSink
    try {
      sink = this.writer(peer)
    } catch {
      return // the link is gone: the asker's ask fails with it
    }
    try {
      this.wire.write(sink, CL_ANSWER, id, answer)
    } catch (err) {
      // too large or unencodable: say so rather than leave the asker waiting
      try { this.wire.write(sink, CL_ANSWER, id, { ok: false, error: `the answer could not be sent: ${messageOf(err)}` }) } catch {}
    }
  }

  /** The link to `peer` went down: its asks fail now. */
  down (peer: string): void {
    for (const [token, w] of this.waiting) {
      if (w.peer !== peer) continue
      this.waiting.delete(token)
      clearTimeout(w.timer)
      w.reject(new LinkUnavailableError(`the link to ${peer} went down before it answered`, { peer, reason: 'closed' }))
    }
  }

  close (): void {
    this.closed = true
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer)
      w.reject(new HostClosedError('the cluster plugin closed before the answer came'))
    }
    this.waiting.clear()
  }
}
