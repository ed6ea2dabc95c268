/**
 * A TCP proxy on 127.0.0.1 to put between hosts (no root, no iptables): a host
 * advertises the proxy's address, its peers dial the proxy, and the test breaks the
 * link on purpose:
 *
 *   const p = await TcpProxy.start(7401)       // forwards 127.0.0.1:<p.port> → 127.0.0.1:7401
 *   p.cut()          // every connection dropped now, new ones refused (a dead link)
 *   p.cut({ refuse: false })   // every connection dropped now, new ones let through (a blip)
 *   p.pause()        // nothing forwarded, nothing closed (a silent link: heartbeats must see it)
 *   p.delay(50)      // every chunk held 50 ms, each way, order kept
 *   p.heal()         // back to forwarding
 *   await p.close()
 *
 * Bytes keep their order in each direction whatever the mode changes do: a chunk is
 * released no earlier than the one before it.
 */
import { connect, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'

class Pipe {
  private readonly queue: Array<{ at: number, chunk: Buffer }> = []
  private timer: NodeJS.Timeout | null = null
  private readonly proxy: TcpProxy
  private readonly to: Socket

  constructor (proxy: TcpProxy, from: Socket, to: Socket) {
    this.proxy = proxy
    this.to = to
    from.on('data', (chunk: Buffer) => this.push(chunk))
  }

  push (chunk: Buffer): void {
    const last = this.queue.length === 0 ? 0 : this.queue[this.queue.length - 1]!.at
    this.queue.push({ at: Math.max(Date.now() + this.proxy.delayMs, last), chunk })
    this.pump()
  }

  pump (): void {
    if (this.timer !== null || this.proxy.paused) return
    while (this.queue.length !== 0) {
      const wait = this.queue[0]!.at - Date.now()
      if (wait > 0) {
        this.timer = setTimeout(() => { this.timer = null; this.pump() }, wait)
        return
      }
      const { chunk } = this.queue.shift()!
      this.proxy.bytes += chunk.length
      if (!this.to.destroyed) this.to.write(chunk)
    }
  }

  stop (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.queue.length = 0
  }
}

export class TcpProxy {
  readonly targetPort: number
  readonly targetHost: string
  private readonly server: Server
  private readonly pairs = new Set<{ a: Socket, b: Socket, pipes: Pipe[] }>()
  private refusing = false
  /** Milliseconds each chunk is held. */
  delayMs = 0
  /** True while nothing is forwarded (pause()). */
  paused = false
  /** Bytes forwarded, both ways. */
  bytes = 0
  /** Connections accepted and refused so far. */
  accepted = 0
  refused = 0
  /** Connections cut so far (cut(), close()). */
  dropped = 0

  private constructor (targetPort: number, targetHost: string) {
    this.targetPort = targetPort
    this.targetHost = targetHost
    this.server = createServer((client) => this.accept(client))
  }

  /** A proxy to `targetHost:targetPort`, listening on 127.0.0.1 (`port` 0: a free one). */
  static async start (targetPort: number, options: { port?: number, targetHost?: string } = {}): Promise<TcpProxy> {
    const p = new TcpProxy(targetPort, options.targetHost ?? '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject)
      p.server.listen(options.port ?? 0, '127.0.0.1', () => resolve())
    })
    return p
  }

  get port (): number {
    return (this.server.address() as { port: number }).port
  }

  /** `127.0.0.1:<port>`: what the host behind it advertises. */
  get address (): string {
    return `127.0.0.1:${this.port}`
  }

  /** Connections open through the proxy now. */
  get connections (): number {
    return this.pairs.size
  }

  private accept (client: Socket): void {
    if (this.refusing) {
      this.refused++
      client.destroy()
      return
    }
    this.accepted++
    client.setNoDelay(true)
    const upstream = connect({ port: this.targetPort, host: this.targetHost })
    upstream.setNoDelay(true)
    const pair = { a: client, b: upstream, pipes: [] as Pipe[] }
    pair.pipes.push(new Pipe(this, client, upstream), new Pipe(this, upstream, client))
    this.pairs.add(pair)
    const end = (): void => {
      if (!this.pairs.delete(pair)) return
      for (const p of pair.pipes) p.stop()
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) {
      s.on('error', end)
      s.on('close', end)
    }
  }

  /** Drop every connection now; with `refuse` (default), refuse new ones until `heal()`. */
  cut (options: { refuse?: boolean } = {}): void {
    this.refusing = options.refuse ?? true
    for (const pair of [...this.pairs]) {
      for (const p of pair.pipes) p.stop()
      pair.a.destroy()
      pair.b.destroy()
      this.pairs.delete(pair)
      this.dropped++
    }
  }

  /** Forward nothing and close nothing until `heal()` (bytes wait, in order). */
  pause (): void {
    this.paused = true
  }

  /** Hold every chunk `ms` milliseconds, each way (0: none). */
  delay (ms: number): void {
    this.delayMs = ms
  }

  /** Accept and forward again, with no delay. */
  heal (): void {
    this.refusing = false
    this.paused = false
    this.delayMs = 0
    for (const pair of this.pairs) for (const p of pair.pipes) p.pump()
  }

  async close (): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
