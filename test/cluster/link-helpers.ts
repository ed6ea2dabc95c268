/**
 * Fixtures for the link tests: hubs on 127.0.0.1, numbered frames whose every byte the
 * receiver can check, a TCP proxy the test can pause (a silent peer, a reader that does
 * not read) or cut (a dropped link), and a logger that records what the hub logged.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { LinkHub, type LinkHubOptions, type FrameSink } from '../../plugins/cluster/link/index.ts'
import { forEachFrame } from '../../native-free-core/ring/ring-queue.ts'
import { patternByte, prng } from '../fixtures/prng.ts'

export const SECRET = 'test-secret-0123456789abcdef-0123456789'

export interface Logged { readonly lines: string[], warn (message: string): void }

export function logger (): Logged {
  const lines: string[] = []
  return { lines, warn: (m) => { lines.push(m) } }
}

/** A listening hub with test-sized timings. */
export async function startHub (id: string, options: Partial<LinkHubOptions> = {}): Promise<LinkHub> {
  const hub = new LinkHub({
    id,
    secret: SECRET,
    hello: { cluster: 'test' },
    reconnect: { initialMs: 10, maxMs: 50 },
    random: prng(7),
    logger: logger(),
    ...options
  })
  await hub.listen()
  return hub
}

export function addressOf (hub: LinkHub): string {
  return `127.0.0.1:${hub.address!.port}`
}

/** Tell every hub about every other one. */
export function mesh (hubs: readonly LinkHub[]): void {
  for (const a of hubs) for (const b of hubs) if (a !== b) a.connect(b.id, addressOf(b))
}

export async function until (what: string, cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** Payload length of frame `seq` when `size` is not fixed: 4..(4 + 96), every padding case. */
function lengthOf (seq: number, size: number | undefined): number {
  return size ?? 4 + (seq % 97)
}

/** Write frames `from`..`from + count - 1`: [u32 seq][pattern bytes]. */
export function writeFrames (w: FrameSink, from: number, count: number, size?: number): void {
  for (let seq = from; seq < from + count; seq++) {
    const len = lengthOf(seq, size)
    const o = w.begin(len)
    const t = w.target
    t.i32[o >> 2] = seq
    for (let i = 4; i < len; i++) t.u8[o + i] = patternByte(seq, i)
    w.end(len)
  }
}

/** Checks frames from each peer arrive in order and byte-exact; counts them. */
export class Received {
  readonly next = new Map<string, number>()
  batches = 0
  private readonly size: number | undefined

  constructor (hub: LinkHub, size?: number) {
    this.size = size
    hub.on('batch', (peer, bytes, i32, frames) => {
      this.batches++
      let n = 0
      forEachFrame(i32, bytes.length, (off, len) => {
        n++
        const seq = i32[off >> 2]!
        const want = this.next.get(peer) ?? 0
        if (seq !== want) assert.fail(`from ${peer}: frame ${seq} where ${want} was due`)
        assert.equal(len, lengthOf(seq, this.size), `frame ${seq} length`)
        for (let i = 4; i < len; i++) if (bytes[off + i] !== patternByte(seq, i)) assert.fail(`frame ${seq} byte ${i}`)
        this.next.set(peer, want + 1)
      })
      assert.equal(n, frames)
    })
  }

  from (peer: string): number {
    return this.next.get(peer) ?? 0
  }

  /** Frames lost on a down are the upper layer's: continue the count from where the sender resumes. */
  skipTo (peer: string, seq: number): void {
    this.next.set(peer, seq)
  }
}

/**
 * A TCP proxy between a dialer and a hub. `pause` stops reading both sides (the kernel
 * buffers fill, then the senders' sockets), `resume` lets bytes flow again, `cut` drops
 * every connection at once.
 */
export class TcpProxy {
  private readonly server: net.Server
  private readonly sockets = new Set<net.Socket>()
  private paused = false
  port = 0

  constructor (targetPort: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(targetPort, '127.0.0.1')
      for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
        this.sockets.add(from)
        from.on('data', (d) => { to.write(d) })
        from.on('close', () => { this.sockets.delete(from); to.destroy() })
        from.on('error', () => {})
        if (this.paused) from.pause()
      }
    })
  }

  async start (): Promise<string> {
    await new Promise<void>((resolve) => { this.server.listen(0, '127.0.0.1', resolve) })
    this.port = (this.server.address() as net.AddressInfo).port
    return `127.0.0.1:${this.port}`
  }

  pause (): void {
    this.paused = true
    for (const s of this.sockets) s.pause()
  }

  resume (): void {
    this.paused = false
    for (const s of this.sockets) s.resume()
  }

  cut (): void {
    for (const s of this.sockets) s.destroy()
  }

  get connections (): number {
    return this.sockets.size / 2
  }

  async close (): Promise<void> {
    this.cut()
    await new Promise((resolve) => { this.server.close(resolve) })
  }
}
