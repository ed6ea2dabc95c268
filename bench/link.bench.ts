/**
 * Cluster link bench (docs/architecture.md §10, "cross-host messages per link": ≥ 5,000,000 msgs/s
 * decoded, batched), every figure beside its raw baseline measured in the same run:
 *
 *   1. envelopes/s decoded over one link, 64 and 1,024 envelopes per WebSocket message:
 *      a LinkHub (ws dialing) → LinkHub (uWS accepting), frames in the engine's layout
 *      (a 16-byte header, a 16-byte agent id; 36 bytes with the length word) written with
 *      begin/end and decoded on arrival as the engine decodes a frame (header reads, the
 *      id as a string) — vs the raw path measured for the design (docs/architecture.md §2): a bare `ws` client → a bare
 *      uWS server, each message a msgpackr-packed array of the same envelopes
 *      ([kind, hash, type, method, payload, id], ~28 bytes each), unpacked on arrival.
 *   2. round trip p50/p99 of one small envelope: hub → hub → hub (flushed per turn) vs a
 *      raw ws → uWS echo (the baseline for the remote call target: ≤ 2×).
 *
 * Two processes, one core each: this one sends, a child (this file with `receiver`)
 * listens and decodes; the rate is envelopes decoded per second from the first write to
 * the child's report that the last one was decoded. msgpackr's native extractor stays
 * on in both (socket bytes are not shared memory; it is 1.6–2.2× faster there).
 *
 * Run: node dist/bench/link.bench.js [--envelopes N] [--reps R]
 */
import { fork, type ChildProcess } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { loadavg } from 'node:os'
import { Packr, Unpackr, isNativeAccelerationEnabled } from 'msgpackr'
import { WebSocket } from 'ws'
import { LinkHub } from '../plugins/cluster/link/index.ts'
import { uwsForServer } from '../plugins/cluster/link/native-uws.ts'
import { zeroMask } from '../plugins/cluster/link/link-socket.ts'
import { forEachFrame } from '../native-free-core/ring/ring-queue.ts'
import { median, percentile, printRows, type Row } from './report.ts'

const SECRET = 'bench-secret-0123456789abcdef-0123456789'
const HEADER = 16
const ID_BYTES = 16
const FRAME = HEADER + ID_BYTES
const IDS = Array.from({ length: 10_000 }, (_, i) => `counter:k${String(i).padStart(7, '0')}`)
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}

interface FastBuffer extends Buffer {
  utf8Write (s: string, offset: number): number
  utf8Slice (start: number, end: number): string
}

type ToChild = { phase: 'count', n: number } | { phase: 'echo' } | { phase: 'exit' }
type FromChild = { ports: { hub: number, raw: number } } | { ready: true } | { done: true, decoded: number, checksum: number, cpuUs: number }

// ---- the receiving process ------------------------------------------------------------

async function receiver (): Promise<void> {
  const send = (m: FromChild): void => { process.send!(m) }
  let target = 0
  let decoded = 0
  let checksum = 0
  let echo = false
  let cpu0 = process.cpuUsage()
  const finish = (): void => {
    if (decoded === target && target !== 0) {
      target = 0
      const cpu = process.cpuUsage(cpu0)
      send({ done: true, decoded, checksum, cpuUs: cpu.user + cpu.system })
    }
  }

  // hub: decode each frame as the engine would (header words, the id as a string)
  const hub = new LinkHub({ id: 'b', secret: SECRET, maxBatchBytes: 1024 * 1024, heartbeatMs: 60_000, listen: { port: 0 } })
  const { port: hubPort } = await hub.listen()
  hub.connect('a', '127.0.0.1:1')
  let cur = Buffer.alloc(0) as FastBuffer
  let cur32: Int32Array = new Int32Array(0)
  const onFrame = (off: number, len: number): void => {
    const idLen = cur[off + 2]! | (cur[off + 3]! << 8)
    const id = cur.utf8Slice(off + HEADER, off + HEADER + idLen)
    checksum = (checksum + cur32[(off + 8) >> 2]! + id.length + cur32[(off + 4) >> 2]! + len) | 0
    decoded++
  }
  hub.on('batch', (_peer, bytes, i32) => {
    if (echo) {
      const w = hub.writer('a')
      forEachFrame(i32, bytes.length, (off, len) => {
        const o = w.begin(len)
        w.target.u8.set(bytes.subarray(off, off + len), o)
        w.end(len)
      })
      return
    }
    cur = bytes as FastBuffer
    cur32 = i32
    forEachFrame(i32, bytes.length, onFrame)
    finish()
  })

  // raw: a bare uWS server unpacking msgpackr arrays of envelopes, or echoing
  const uws = uwsForServer(console.warn)
  const unpackr = new Unpackr({ useRecords: false })
  const app = uws.App()
  app.ws('/*', {
    maxPayloadLength: 1024 * 1024,
    idleTimeout: 0,
    maxBackpressure: 64 * 1024 * 1024,
    message: (ws, message) => {
      if (echo) { ws.send(message, true); return }
      const envelopes = unpackr.unpack(Buffer.from(message)) as Array<[number, number, number, number, number, string]>
      for (let i = 0; i < envelopes.length; i++) {
        const e = envelopes[i]!
        checksum = (checksum + e[4] + e[5].length + e[1] + 32) | 0
      }
      decoded += envelopes.length
      finish()
    }
  })
  const rawPort = await new Promise<number>((resolve) => {
    app.listen('127.0.0.1', 0, (s) => { resolve(uws.us_socket_local_port(s as never)) })
  })

  process.on('message', (m: ToChild) => {
    if (m.phase === 'exit') process.exit(0)
    decoded = 0
    checksum = 0
    echo = m.phase === 'echo'
    target = m.phase === 'count' ? m.n : 0
    cpu0 = process.cpuUsage()
    send({ ready: true })
  })
  send({ ports: { hub: hubPort, raw: rawPort } })
}

// ---- the sending process --------------------------------------------------------------

class Child {
  private readonly proc: ChildProcess
  private waiting: ((m: FromChild) => void) | null = null
  private readonly inbox: FromChild[] = []

  constructor () {
    this.proc = fork(fileURLToPath(import.meta.url), ['receiver'], { stdio: 'inherit' })
    this.proc.on('message', (m: FromChild) => {
      if (this.waiting !== null) { const w = this.waiting; this.waiting = null; w(m) } else this.inbox.push(m)
    })
  }

  async next (): Promise<FromChild> {
    const m = this.inbox.shift()
    if (m !== undefined) return m
    return await new Promise((resolve) => { this.waiting = resolve })
  }

  async phase (m: ToChild): Promise<void> {
    this.proc.send(m)
    await this.next()
  }

  /** Let the child exit by itself (so that --cpu-prof writes its profile too). */
  async exit (): Promise<void> {
    const exited = new Promise((resolve) => this.proc.once('exit', resolve))
    this.proc.send({ phase: 'exit' })
    await exited
  }
}

const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

/** Frames encoded once, for the variant that measures the link without the encoder. */
const PRE = (() => {
  const words = new Int32Array(1024 * (FRAME / 4))
  const u8 = Buffer.from(words.buffer) as FastBuffer
  for (let i = 0; i < 1024; i++) encodeFrame(u8, words, new Uint16Array(words.buffer), i * FRAME, i)
  return words
})()

/** A frame in the engine's layout: kind, tag, id length, hash, payload, type+method, the id. */
function encodeFrame (u8: FastBuffer, i32: Int32Array, u16: Uint16Array, o: number, i: number): number {
  const idLen = u8.utf8Write(IDS[i % IDS.length]!, o + HEADER)
  u8[o] = 1
  u8[o + 1] = 4
  u16[(o + 2) >> 1] = idLen
  i32[(o + 4) >> 2] = i * 2654435761
  i32[(o + 8) >> 2] = i
  i32[(o + 12) >> 2] = 0x00040003
  return HEADER + idLen
}

/**
 * Envelopes/s through two hubs, `perBatch` frames per WebSocket message, each frame
 * encoded by the sender as the engine would — or, with `preEncoded`, copied from frames
 * encoded before the clock started, like the raw baseline's pre-packed messages.
 */
/** One measured phase: wall-clock rate, and envelopes per CPU-second of each process (what a core could do). */
interface Run { rate: number, sendPerCpuS: number, recvPerCpuS: number }

async function finishRun (child: Child, what: string, n: number, t0: number, cpu0: NodeJS.CpuUsage): Promise<Run> {
  const done = await child.next()
  const t1 = performance.now()
  const cpu = process.cpuUsage(cpu0)
  if (!('done' in done) || done.decoded !== n) throw new Error(`${what} phase: ${JSON.stringify(done)}`)
  return { rate: n / ((t1 - t0) / 1000), sendPerCpuS: n / ((cpu.user + cpu.system) / 1e6), recvPerCpuS: n / (done.cpuUs / 1e6) }
}

async function hubRate (child: Child, a: LinkHub, n: number, perBatch: number, preEncoded: boolean): Promise<Run> {
  await child.phase({ phase: 'count', n })
  const w = a.writer('b')
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let i = 0
  while (i < n) {
    const end = Math.min(n, i + 16 * perBatch)
    if (preEncoded) {
      for (; i < end; i++) {
        const o = w.begin(FRAME) >> 2
        const dst = w.target.i32
        const src = (i & 1023) * (FRAME / 4)
        for (let k = 0; k < FRAME / 4; k++) dst[o + k] = PRE[src + k]!
        w.end(FRAME)
      }
    } else {
      for (; i < end; i++) {
        const o = w.begin(FRAME)
        const t = w.target
        w.end(encodeFrame(t.u8 as FastBuffer, t.i32, t.u16, o, i))
      }
    }
    if (w.queuedBytes > 4 * 1024 * 1024) await new Promise((resolve) => a.once('drain', resolve))
    else if ((i & 0xffff) < 16 * perBatch) await tick()
  }
  return await finishRun(child, 'hub', n, t0, cpu0)
}

/**
 * Envelopes/s over a bare ws → uWS socket, `perBatch` envelopes per msgpackr-packed
 * message. The messages are packed before the clock starts (16 distinct ones, sent in
 * turn): the baseline is the socket and the decoder alone, as measured for the design (docs/architecture.md §2).
 */
async function rawRate (child: Child, ws: WebSocket, n: number, perBatch: number): Promise<Run> {
  const packr = new Packr({ useRecords: false })
  const messages: Buffer[] = []
  for (let m = 0, i = 0; m < 16; m++) {
    const batch: Array<[number, number, number, number, number, string]> = []
    for (let k = 0; k < perBatch; k++, i++) batch.push([1, (i * 2654435761) | 0, 3, 4, i, IDS[i % IDS.length]!])
    messages.push(packr.pack(batch))
  }
  await child.phase({ phase: 'count', n })
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let i = 0
  let m = 0
  while (i < n) {
    for (let k = 0; k < 16 && i < n; k++) {
      if (n - i < perBatch) throw new Error('n must be a multiple of perBatch')
      ws.send(messages[m++ & 15]!, { binary: true })
      i += perBatch
    }
    if (ws.bufferedAmount > 4 * 1024 * 1024) {
      while (ws.bufferedAmount > 1024 * 1024) await tick()
    } else if ((i & 0xffff) < 16 * perBatch) await tick()
  }
  return await finishRun(child, 'raw', n, t0, cpu0)
}

async function hubRoundTrips (a: LinkHub, rounds: number): Promise<number[]> {
  const w = a.writer('b')
  const times: number[] = []
  let resolve: () => void = () => {}
  const onBatch = (): void => { resolve() }
  a.on('batch', onBatch)
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now()
    const back = new Promise<void>((res) => { resolve = res })
    const o = w.begin(FRAME)
    const u8 = w.target.u8 as FastBuffer
    const idLen = u8.utf8Write(IDS[r % IDS.length]!, o + HEADER)
    w.target.i32[(o + 8) >> 2] = r
    w.end(HEADER + idLen)
    await back
    times.push((performance.now() - t0) * 1000)
  }
  a.off('batch', onBatch)
  return times
}

async function rawRoundTrips (ws: WebSocket, rounds: number): Promise<number[]> {
  const packr = new Packr({ useRecords: false })
  const unpackr = new Unpackr({ useRecords: false })
  const times: number[] = []
  let resolve: () => void = () => {}
  const onMessage = (data: Buffer): void => { unpackr.unpack(data); resolve() }
  ws.on('message', onMessage)
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now()
    const back = new Promise<void>((res) => { resolve = res })
    ws.send(packr.pack([1, r, 3, 4, r, IDS[r % IDS.length]!]), { binary: true })
    await back
    times.push((performance.now() - t0) * 1000)
  }
  ws.off('message', onMessage)
  return times
}

async function main (): Promise<void> {
  const n = arg('--envelopes', 2_097_152)
  const reps = arg('--reps', 5)
  const rounds = arg('--rounds', 5_000)
  const load = loadavg()
  const child = new Child()
  const ready = await child.next()
  if (!('ports' in ready)) throw new Error('receiver did not start')
  const ws = new WebSocket(`ws://127.0.0.1:${ready.ports.raw}/raw`, { perMessageDeflate: false, generateMask: zeroMask, maxPayload: 1024 * 1024 })
  await new Promise((resolve) => ws.once('open', resolve))
  const rows: Row[] = []
  for (const perBatch of [64, 1_024]) {
    const a = new LinkHub({ id: 'a', secret: SECRET, maxBatchBytes: 1024 * 1024, flushBytes: perBatch * (FRAME + 4), heartbeatMs: 60_000, highWaterBytes: 4 * 1024 * 1024 })
    a.connect('b', `127.0.0.1:${ready.ports.hub}`)
    await new Promise((resolve) => a.once('up', resolve))
    const hub: Run[] = []
    const pre: Run[] = []
    const raw: Run[] = []
    await hubRate(child, a, n / 4, perBatch, false) // warm-up
    await hubRate(child, a, n / 4, perBatch, true)
    await rawRate(child, ws, n / 4, perBatch)
    for (let r = 0; r < reps; r++) {
      hub.push(await hubRate(child, a, n, perBatch, false))
      pre.push(await hubRate(child, a, n, perBatch, true))
      raw.push(await rawRate(child, ws, n, perBatch))
    }
    const batches = a.stats().peers[0]!
    const m = (runs: Run[], k: keyof Run): number => median(runs.map((x) => x[k]))
    const paired = (runs: Run[]): string => median(runs.map((x, r) => x.rate / raw[r]!.rate)).toFixed(2)
    const best = (runs: Run[]): string => (Math.max(...runs.map((x) => x.rate)) / 1e6).toFixed(2)
    const baseline = { name: `raw ws→uWS, pre-packed msgpackr arrays of ${perBatch}`, value: m(raw, 'rate') }
    for (const [what, runs] of [['encoded by the sender', hub], ['pre-encoded frames', pre]] as const) {
      rows.push({
        name: `link envelopes decoded/s, ${perBatch} per message, ${what} (median of ${reps})`,
        value: m(runs, 'rate'),
        unit: 'msgs/s',
        baseline,
        note: `≥ 5M/s ${m(runs, 'rate') >= 5_000_000 ? 'met' : 'MISSED'}; paired ratio ${paired(runs)}×; best ${best(runs)}M vs ${best(raw)}M${what === 'encoded by the sender' ? `; ${(batches.framesOut / batches.batchesOut).toFixed(0)} frames/message` : ''}`
      })
    }
    rows.push({
      name: `receiver: envelopes decoded per CPU-second, ${perBatch} per message`,
      value: m(hub, 'recvPerCpuS'),
      unit: 'msgs/cpu-s',
      baseline: { name: 'raw uWS + msgpackr unpack', value: m(raw, 'recvPerCpuS') },
      note: 'load-independent: what one core could decode'
    })
    rows.push({
      name: `sender: envelopes encoded and sent per CPU-second, ${perBatch} per message`,
      value: m(hub, 'sendPerCpuS'),
      unit: 'msgs/cpu-s',
      baseline: { name: 'raw ws sending pre-packed messages', value: m(raw, 'sendPerCpuS') },
      note: `pre-encoded frames: ${(m(pre, 'sendPerCpuS') / 1e6).toFixed(2)}M/cpu-s`
    })
    if (perBatch === 1_024) {
      // the child echoes both; interleaved in slices so that the machine's load falls on both alike
      await child.phase({ phase: 'echo' })
      await hubRoundTrips(a, 500)
      await rawRoundTrips(ws, 500)
      const hubRt: number[] = []
      const rawRt: number[] = []
      for (let k = 0; k < 10; k++) {
        hubRt.push(...await hubRoundTrips(a, rounds / 10))
        rawRt.push(...await rawRoundTrips(ws, rounds / 10))
      }
      rows.push({ name: 'round trip p50, one envelope hub→hub→hub', value: percentile(hubRt, 0.5), unit: 'µs', baseline: { name: 'raw ws→uWS echo p50', value: percentile(rawRt, 0.5) } })
      rows.push({ name: 'round trip p99, one envelope hub→hub→hub', value: percentile(hubRt, 0.99), unit: 'µs', baseline: { name: 'raw ws→uWS echo p99', value: percentile(rawRt, 0.99) } })
    }
    await a.close()
  }
  ws.close()
  await child.exit()
  printRows('link', rows, `sender: main thread of this process; receiver: main thread of a child process; msgpackr native ${isNativeAccelerationEnabled ? 'on' : 'OFF'}; load before ${load.map((x) => x.toFixed(2)).join(' ')}, after ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
}

if (process.argv[2] === 'receiver') await receiver()
else await main()
