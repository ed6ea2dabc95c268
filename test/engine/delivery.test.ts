import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startHost, ownerOf } from './helpers.ts'

test('100,000 agents on 2 workers each receive exactly what was sent to them, in order per sender', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const N = 100_000
    const ROUNDS = 3
    const keys = Array.from({ length: N }, (_, i) => `r${i}`)
    const owners = new Set(keys.map((k) => ownerOf('recorder', k)))
    assert.deepEqual([...owners].sort(), [1, 2], 'the agents are spread over both workers')
    // sender 1: the main thread, casting
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < N; i++) host.ref('recorder', keys[i]!).cast('record', ['main', round])
    }
    // senders 2..21: agents on both workers, each sending to its own slice of 1,000 recorders
    const EMITTERS = 20
    const slices: string[][] = []
    const emits: Array<Promise<number>> = []
    for (let e = 0; e < EMITTERS; e++) {
      const slice = keys.slice(e * 1000, e * 1000 + 1000)
      slices.push(slice)
      emits.push(host.ref('emitter', `e${e}`).call('emit', { targets: slice, rounds: ROUNDS }) as Promise<number>)
    }
    assert.deepEqual(await Promise.all(emits), Array(EMITTERS).fill(1000 * ROUNDS))
    // read back. An emitter's reply and its sends leave together after its commit, but the
    // sends travel worker → worker while our reads go main → worker: re-read the agents
    // still short of messages until everything arrived (the count only grows).
    const expectedFromEmitter = new Map<string, string>()
    slices.forEach((slice, e) => { for (const k of slice) expectedFromEmitter.set(k, `e${e}`) })
    const expectedCount = (i: number): number => ROUNDS * (expectedFromEmitter.has(keys[i]!) ? 2 : 1)
    const seen = new Array<Array<[string, number]>>(N)
    let todo = keys.map((_, i) => i)
    for (let attempt = 0; todo.length > 0; attempt++) {
      assert.ok(attempt < 1000, `${todo.length} agents never got all their messages`)
      const next: number[] = []
      for (let start = 0; start < todo.length; start += 10_000) {
        const batch = todo.slice(start, start + 10_000)
        const got = await Promise.all(batch.map((i) => host.ref('recorder', keys[i]!).call('seen') as Promise<Array<[string, number]>>))
        got.forEach((s, j) => {
          const i = batch[j]!
          seen[i] = s
          assert.ok(s.length <= expectedCount(i), `${keys[i]} got more than was sent`)
          if (s.length < expectedCount(i)) next.push(i)
        })
      }
      todo = next
    }
    for (let i = 0; i < N; i++) {
      const mine = seen[i]!
      const fromMain = mine.filter(([s]) => s === 'main').map(([, n]) => n)
      assert.deepEqual(fromMain, [0, 1, 2], `main → ${keys[i]}`)
      const emitterKey = expectedFromEmitter.get(keys[i]!)
      const fromEmitter = mine.filter(([s]) => s !== 'main')
      if (emitterKey === undefined) {
        assert.equal(fromEmitter.length, 0, `${keys[i]} got nothing from emitters`)
      } else {
        assert.ok(fromEmitter.every(([s]) => s === emitterKey), `${keys[i]} only from ${emitterKey}`)
        const seqs = fromEmitter.map(([, n]) => n)
        assert.equal(seqs.length, ROUNDS, `${keys[i]} got ${ROUNDS} from ${emitterKey}`)
        assert.ok(seqs.every((n, j) => j === 0 || n > seqs[j - 1]!), `in order from ${emitterKey}: ${seqs}`)
      }
    }
    const stats = host.stats()
    assert.ok(stats.workers.every((w) => w.activeAgents > 40_000), 'both workers carry a share')
    assert.equal(stats.activeAgents, N + EMITTERS)
  } finally {
    await host.close()
  }
})
