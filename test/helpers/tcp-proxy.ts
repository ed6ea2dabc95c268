/**
 * A TCP proxy on 127.0.0.1 that a test puts between two hosts, to break their link on
 * purpose (no root, no network namespaces): `drop()` cuts every connection through it
 * (the hosts see their link die and reconnect), `block()` refuses new connections and
 * cuts the current ones until `unblock()`, `delayMs` holds each chunk back.
 */
import { createServer, connect } from 'node:net'
import type { Server, Socket } from 'node:net'

export class TcpProxy {
  readonly port: number
  private readonly server: Server
  private readonly pairs = new Set<[Socket, Socket]>()
  private blocked = false
  /** Delay added to every chunk, each way. */
  delayMs = 0
  /** Connections cut so far. */
  dropped = 0

  private constructor (server: Server, port: number) {
    this.server = server
    this.port = port
  }

  /** Listen on a free port and forward every connection to `target` (`port` on 127.0.0.1). */
  static async start (target: number): Promise<TcpProxy> {
    let proxy: TcpProxy | null = null
    const server = createServer((inbound) => proxy!.accept(inbound, target))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    proxy = new TcpProxy(server, (server.address() as { port: number }).port)
    return proxy
  }

  private accept (inbound: Socket, target: number): void {
    if (this.blocked) {
      inbound.destroy()
      return
    }
    const outbound = connect(target, '127.0.0.1')
    const pair: [Socket, Socket] = [inbound, outbound]
    this.pairs.add(pair)
    const pipe = (from: Socket, to: Socket): void => {
      from.on('data', (chunk) => {
        if (this.delayMs === 0) to.write(chunk)
        else setTimeout(() => { if (!to.destroyed) to.write(chunk) }, this.delayMs)
      })
    }
    pipe(inbound, outbound)
    pipe(outbound, inbound)
    const close = (): void => {
      this.pairs.delete(pair)
      inbound.destroy()
      outbound.destroy()
    }
    inbound.on('close', close).on('error', close)
    outbound.on('close', close).on('error', close)
  }

  /** Connections open through the proxy now. */
  get connections (): number {
    return this.pairs.size
  }

  /** Cut every connection now (new ones are let through). */
  drop (): void {
    for (const [a, b] of this.pairs) {
      a.destroy()
      b.destroy()
      this.dropped++
    }
    this.pairs.clear()
  }

  block (): void {
    this.blocked = true
    this.drop()
  }

  unblock (): void {
    this.blocked = false
  }

  async close (): Promise<void> {
    this.drop()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
