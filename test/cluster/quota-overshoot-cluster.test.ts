/**
 * The cluster's soft limit, replayed tick by tick (plugins/cluster/quotas/cluster-quotas.ts):
 * several hosts create and delete agents of one quota at random (seeded), each checking
 * its creations with the real gate (QuotaGate) on the real counters and quota table
 * (HostQuotas), each publishing its counts every P ticks with the real ClusterQuotas, and
 * the publications reach the others through FIFO links after a random delay of at most D
 * ticks (decoded from the real cluster frames). Claim: with S = P + D, a creation
 * admitted on host h at tick t leaves the cluster's count at most
 *
 *     limit + (agents the other hosts created in (t − S, t])
 *
 * checked after every admission; the count does go over the limit (the bound is not
 * vacuous), and once the creations stop every host counts exactly the cluster's agents.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { kDelete } from '../../native-free-core/runtime/cell.ts'
import type { Cell } from '../../native-free-core/runtime/cell.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import { QuotaGate } from '../../native-free-core/tenancy/quota-gate.ts'
import { HostQuotas } from '../../src/tenancy/host-quotas.ts'
import { FrameBuffer } from '../../src/thread/frame-buffer.ts'
import { ClusterQuotas } from '../../plugins/cluster/quotas/cluster-quotas.ts'
import { ClusterWire } from '../../plugins/cluster/wire.ts'
import { prng, between } from '../fixtures/prng.ts'

const Q = 'tenant'
const FRAME = 64 * 1024

interface SimHost {
  readonly name: string
  readonly quotas: HostQuotas
  readonly gate: QuotaGate
  readonly cluster: ClusterQuotas
  readonly out: Map<string, FrameBuffer>
  /** Ticks of this host's creations. */
  readonly created: number[]
  /** Its stored agents (ids), for deletions. */
  readonly stored: string[]
  phase: number
  seq: number
}

interface InFlight { at: number, from: string, to: string, frame: Uint8Array }

/** `creators`: how many of the hosts create (the others only delete); `preload`: agents each host has at the start. */
async function run (seed: number, hosts: number, limit: number, P: number, D: number, ticks: number, creators = hosts, preload = 0): Promise<{ maxOver: number }> {
  const rand = prng(seed)
  const wire = new ClusterWire(FRAME)
  const names = Array.from({ length: hosts }, (_, i) => `h${i}`)
  const sim: SimHost[] = []
  for (const name of names) {
    const quotas = new HostQuotas(2, new MemoryStore(), async () => {})
    await quotas.apply(Q, limit)
    const out = new Map(names.filter((n) => n !== name).map((n) => [n, new FrameBuffer(1024)]))
    const cluster = new ClusterQuotas({
      quotas,
      limits: { start: async () => {}, set: async () => {}, delete: async () => false, close: async () => {} },
      wire,
      links: { writer: (p) => out.get(p)!, isUp: () => true, peerIds: () => [...out.keys()] },
      publishMs: P,
      maxFrameBytes: FRAME
    })
    sim.push({ name, quotas, gate: new QuotaGate(quotas.directory, quotas.counters, 1), cluster, out, created: [], stored: [], phase: between(rand, 0, P - 1), seq: 0 })
  }
  const byName = new Map(sim.map((h) => [h.name, h]))
  const flights: InFlight[] = []
  const lastAt = new Map<string, number>()
  const ship = (h: SimHost, t: number): void => {
    for (const [to, buf] of h.out) {
      buf.forEach((frame) => {
        // FIFO per link: never before the frame sent ahead of it
        const link = `${h.name}>${to}`
        const at = Math.max(lastAt.get(link) ?? 0, t + between(rand, 1, D))
        lastAt.set(link, at)
        flights.push({ at, from: h.name, to, frame: Uint8Array.from(frame) })
      })
      buf.clear()
    }
  }
  let total = 0
  for (const h of sim) {
    for (let i = 0; i < preload; i++) {
      const id = idString(Q, 'counter', `${h.name}-${h.seq++}`)
      const cell = { idRef: id, flags: 0 } as unknown as Cell
      assert.equal(h.gate.reserve(cell, id), null)
      h.gate.committing(cell, id)
      h.gate.committed(h.gate.closeBatch()!)
      h.stored.push(id)
      total++
    }
  }
  for (const h of sim) for (const peer of h.out.keys()) h.cluster.up(peer) // links come up: whole tables
  for (const h of sim) ship(h, 0)

  let maxOver = 0
  const S = P + D
  for (let t = 1; t <= ticks; t++) {
    // 1. publications due arrive, in order
    for (let i = 0; i < flights.length;) {
      const f = flights[i]!
      if (f.at > t) { i++; continue }
      flights.splice(i, 1)
      const decoded = wire.read(Buffer.from(f.frame))!
      byName.get(f.to)!.cluster.counts(f.from, decoded.value)
    }
    // 2. creations and deletions, the hosts in a random order
    const order = [...sim].sort(() => rand() - 0.5)
    for (const h of order) {
      const r = rand()
      if (r < 0.5 && sim.indexOf(h) < creators) {
        const id = idString(Q, 'counter', `${h.name}-${h.seq++}`)
        const cell = { idRef: id, flags: 0 } as unknown as Cell
        if (h.gate.reserve(cell, id) !== null) continue
        h.gate.committing(cell, id)
        h.gate.committed(h.gate.closeBatch()!)
        h.created.push(t)
        h.stored.push(id)
        total++
        let recent = 0
        for (const g of sim) if (g !== h) for (let k = g.created.length - 1; k >= 0 && g.created[k]! > t - S; k--) recent++
        assert.ok(total <= limit + recent, `seed ${seed}, tick ${t}, ${h.name}: ${total} agents > limit ${limit} + ${recent} created elsewhere in the last ${S} ticks`)
        maxOver = Math.max(maxOver, total - limit)
      } else if (r < 0.56 && h.stored.length !== 0) {
        const id = h.stored.splice(between(rand, 0, h.stored.length - 1), 1)[0]!
        const cell = { idRef: id, flags: kDelete } as unknown as Cell
        h.gate.committing(cell, id)
        h.gate.committed(h.gate.closeBatch()!)
        total--
      }
    }
    // 3. hosts whose publication tick it is publish what changed
    for (const h of sim) {
      if (t % P === h.phase) h.cluster.publish()
      ship(h, t)
    }
  }
  // quiet: everything published and delivered, every host counts the cluster's agents
  for (const h of sim) {
    h.cluster.publish()
    ship(h, ticks)
  }
  for (const f of flights.sort((a, b) => a.at - b.at)) byName.get(f.to)!.cluster.counts(f.from, wire.read(Buffer.from(f.frame))!.value)
  for (const h of sim) assert.equal(h.quotas.get(Q)!.count, total, `${h.name} counts every host's agents`)
  assert.equal(sim.reduce((n, h) => n + h.quotas.localCounts().find(([q]) => q === Q)![1], 0), total)
  return { maxOver }
}

test('cluster quota: an admission overshoots by at most what the other hosts created within publishMs + link delay', async () => {
  let worst = 0
  for (let seed = 1; seed <= 24; seed++) {
    const hosts = 2 + (seed % 3)
    const { maxOver } = await run(seed, hosts, 60 + seed, 4 + (seed % 5), 1 + (seed % 4), 1500)
    worst = Math.max(worst, maxOver)
  }
  assert.ok(worst > 0, 'creations racing on several hosts do go over the limit (a soft limit)')
})

test('cluster quota: a host that creates while the others only delete never overshoots', async () => {
  for (let seed = 100; seed < 106; seed++) {
    const { maxOver } = await run(seed, 3, 90, 5, 3, 1000, 1, 20)
    assert.equal(maxOver, 0, `seed ${seed}`)
  }
})
