import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { AgentTable, MAX_CELLS } from '../../native-free-core/runtime/agent-table.ts'
import { CapacityExceededError } from '../../native-free-core/errors.ts'

interface Item { readonly id: string, idRef: number | string, readonly hash: number, readonly v: number }

/** An item for `table`: its id's bytes in the table's arena, as the runtime's cells hold them. */
function item (table: AgentTable<Item>, id: string, hash: number, v: number): Item {
  return { id, idRef: table.ids.addString(id), hash, v }
}

/** One model-checked operation: `kind` on both the table and a Map, then a lookup compared; returns the next value counter. */
function applyOp (table: AgentTable<Item>, model: Map<string, Item>, kind: string, id: string, h: number, v: number): number {
  if (kind === 'set') {
    const it = item(table, id, h, v++)
    table.set(id, h, it)
    model.set(id, it)
  } else if (kind === 'delete') {
    assert.equal(table.delete(id, h), model.delete(id))
  }
  assert.equal(table.get(id, h), model.get(id))
  return v
}

test('the open-addressing table behaves like a Map under random inserts, replaces and deletes', () => {
  // few distinct hashes force long probe chains, collisions and tombstones
  const op = fc.tuple(fc.constantFrom('set', 'delete', 'get'), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 7 }))
  fc.assert(fc.property(fc.array(op, { maxLength: 3000 }), (ops) => {
    const table = new AgentTable<Item>()
    const model = new Map<string, Item>()
    let v = 0
    for (const [kind, k, bucket] of ops) {
      const id = `id-${k}`
      const hash = (bucket * 0x9e3779b1 + (k % 3)) | 0 // collisions across ids on purpose
      const known = model.get(id)
      const h = known?.hash ?? hash
      v = applyOp(table, model, kind, id, h, v)
      // by the id's bytes (a message frame's), through the same collisions
      const bytes = Buffer.from(`..${id}`)
      assert.equal(table.getBytes(h, bytes, 2, bytes.length - 2), model.get(id))
      assert.equal(table.size, model.size)
    }
    assert.deepEqual([...table.values()].sort((a, b) => a.v - b.v), [...model.values()].sort((a, b) => a.v - b.v))
  }), { seed: 42, numRuns: 200 })
})

test('the table grows, and churn through deleted slots keeps its capacity bounded', () => {
  const table = new AgentTable<Item>()
  const N = 200_000
  for (let i = 0; i < N; i++) table.set(`k${i}`, Math.imul(i, 0x9e3779b1), item(table, `k${i}`, Math.imul(i, 0x9e3779b1), i))
  assert.equal(table.size, N)
  for (let i = 0; i < N; i += 2) assert.ok(table.delete(`k${i}`, Math.imul(i, 0x9e3779b1)))
  for (let i = 0; i < N; i++) assert.equal(table.get(`k${i}`, Math.imul(i, 0x9e3779b1))?.v, i % 2 === 0 ? undefined : i)
  // churn: many insert/delete rounds must not grow without bound (tombstones are purged)
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < N; i += 2) table.set(`r${round}-${i}`, Math.imul(i + round, 0x85ebca6b), item(table, `r${round}-${i}`, Math.imul(i + round, 0x85ebca6b), -1))
    for (let i = 0; i < N; i += 2) assert.ok(table.delete(`r${round}-${i}`, Math.imul(i + round, 0x85ebca6b)))
  }
  assert.equal(table.size, N / 2)
  assert.ok(table.slots <= 1 << 19, 'capacity stayed bounded')
})

test('one worker\'s share of the hashes (a shard bit constant) still spreads over the whole table', () => {
  // with 2 workers, worker 1 owns the even shards: bit 20 of every hash it holds is 0.
  // Past 2^20 slots a `hash & mask` home slot left half the table unreachable (the engine
  // stalled at ~1.05M agents per worker); 1,000,000 agents need a 2^21-slot table.
  const table = new AgentTable<Item>()
  let x = 0x2545f491
  const N = 1_000_000
  for (let i = 0; i < N; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5 // xorshift32, seeded: deterministic
    const hash = x & ~(1 << 20)
    table.set(`k${i}`, hash, item(table, `k${i}`, hash, i))
  }
  assert.equal(table.size, N)
  assert.ok(table.slots > 1 << 20, 'the table grew past 2^20 slots')
  const d = table.meanProbeDistance()
  assert.ok(d < 3, `mean probe distance ${d.toFixed(2)} (linear probing at load ≤ 0.7 expects ~1)`)
})

test('probe chains cross chunk boundaries and wrap around the last chunk like any other slot', () => {
  // slots live in chunks of 2^17; a table of 2^18 slots has two. Hashes are chosen so that
  // their home slots are the last ones of each chunk: chains run from chunk 0 into chunk 1
  // and from the table's last slot around to slot 0.
  const cap = 1 << 18
  const shift = 32 - 18
  let inv = 0x9e3779b9 // inverse of the golden multiplier mod 2^32 (Newton: 5 steps)
  for (let k = 0; k < 5; k++) inv = Math.imul(inv, 2 - Math.imul(0x9e3779b9, inv))
  const hashHome = (slot: number, salt: number): number => Math.imul((slot << shift) | salt, inv) | 0
  const homes = [cap / 2 - 2, cap / 2 - 1, cap - 2, cap - 1]
  const op = fc.tuple(fc.constantFrom('set', 'delete', 'get'), fc.integer({ min: 0, max: 60 }))
  fc.assert(fc.property(fc.array(op, { maxLength: 600 }), (ops) => {
    const table = new AgentTable<Item>(cap)
    assert.equal(table.slots, cap)
    const model = new Map<string, Item>()
    let v = 0
    for (const [kind, k] of ops) {
      const id = `id-${k}`
      const h = hashHome(homes[k % homes.length]!, k)
      v = applyOp(table, model, kind, id, h, v)
    }
    assert.equal(table.size, model.size)
    assert.deepEqual([...table.values()].sort((a, b) => a.v - b.v), [...model.values()].sort((a, b) => a.v - b.v))
  }), { seed: 7, numRuns: 100 })
  // and a rebuild (grow) keeps every cell findable across chunks
  const table = new AgentTable<Item>(cap)
  const n = 200_000
  for (let i = 0; i < n; i++) {
    const h = i < 40 ? hashHome(homes[i % 4]!, i) : Math.imul(i, 0x85ebca6b)
    table.set(`g${i}`, h, item(table, `g${i}`, h, i))
  }
  assert.ok(table.slots >= 1 << 19, 'grew')
  for (let i = 0; i < n; i++) {
    const h = i < 40 ? hashHome(homes[i % 4]!, i) : Math.imul(i, 0x85ebca6b)
    assert.equal(table.get(`g${i}`, h)?.v, i)
  }
  assert.equal([...table.values()].length, n)
})

test('getBytes finds a resident id by its UTF-8 bytes among colliding hashes, non-ASCII ones too', () => {
  const table = new AgentTable<Item>(8)
  const hash = 12345
  const ids = ['default\u001fcounter\u001fk1', 'default\u001fcounter\u001fk2', 'default\u001fcounter\u001fk10', 'Ã©', 'é', 'q\u001ft\u001f日本語🦀']
  ids.forEach((id, v) => table.set(id, hash, item(table, id, hash, v)))
  for (const id of ids) {
    const b = Buffer.from(`xx${id}`)
    assert.equal(table.getBytes(hash, b, 2, b.length - 2)?.id, id, id)
    assert.equal(table.get(id, hash)?.id, id, id)
    assert.equal(table.getBytes(hash + 1, b, 2, b.length - 2), undefined, 'another hash')
  }
  // "é" is two bytes, C3 A9: the char codes of "Ã©" — equal lengths, equal codes, not the same id
  const e = Buffer.from('é')
  assert.deepEqual([...e], ['Ã'.charCodeAt(0), '©'.charCodeAt(0)])
  assert.equal(table.getBytes(hash, e, 0, e.length)?.id, 'é')
  assert.equal(table.get('é', hash)?.id, 'é')
  assert.equal(table.get('Ã©', hash)?.id, 'Ã©')
  assert.equal(table.getBytes(hash, Buffer.from('default\u001fcounter\u001fk3'), 0, 19), undefined, 'not resident')
  assert.equal(table.get('default\u001fcounter\u001fk1x', hash), undefined, 'a longer id with the same start')
})

test('remove takes out the cell itself, and only it', () => {
  const table = new AgentTable<Item>(8)
  const a = item(table, 'a', 7, 1)
  const b = item(table, 'b', 7, 2)
  table.set('a', 7, a)
  table.set('b', 7, b)
  assert.equal(table.remove(item(table, 'a', 7, 3)), false, 'another cell with the same id is not in the table')
  assert.equal(table.remove(a), true)
  assert.equal(table.remove(a), false)
  assert.equal(table.get('a', 7), undefined)
  assert.equal(table.get('b', 7), b, 'found past the removed slot')
  assert.equal(table.size, 1)
})

/** xorshift32 from `seed`: the same ops every run. */
function rng (seed: number): () => number {
  let x = seed | 0
  return () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0 }
}

/** Every model entry found by id (string and bytes) and no other; values() yields each live item once. */
function checkAll (table: AgentTable<Item>, model: Map<string, Item>, gone: Item[]): void {
  assert.equal(table.size, model.size)
  for (const [id, it] of model) {
    assert.equal(table.get(id, it.hash), it, id)
    const b = Buffer.from(id)
    assert.equal(table.getBytes(it.hash, b, 0, b.length), it, id)
  }
  for (const it of gone) if (!model.has(it.id)) assert.equal(table.get(it.id, it.hash), undefined, `${it.id} was removed`)
  const seen = new Set<Item>()
  for (const it of table.values()) {
    assert.ok(!seen.has(it), 'values() yields a cell once')
    seen.add(it)
    assert.equal(model.get(it.id), it, 'values() yields live cells only')
  }
  assert.equal(seen.size, model.size)
}

test('growth: every id stays findable through doublings, removals, replaces and reused slab indexes (seeded)', () => {
  const next = rng(0x5eed)
  const table = new AgentTable<Item>(8)
  const model = new Map<string, Item>()
  const live: Item[] = [] // for picks; may hold stale entries, checked against the model
  const gone: Item[] = []
  let v = 0
  let slots = table.slots
  let doublings = 0
  for (let op = 0; op < 240_000; op++) {
    // mostly inserts first (past one slab chunk of 65,536 cells), then mostly churn
    const r = next() % 100
    if (r < (op < 200_000 ? 80 : 35) || live.length === 0) {
      // a new id; one in 32 shares one of a few hashes (chains of equal hashes and
      // equal tags) — not more: every lookup walks its chain, and a third of 160,000
      // ids on 16 hashes made this test take 100 s
      const id = `n${v}`
      const h = next() % 32 === 0 ? (next() % 16) * 64 : next() | 0
      const it = item(table, id, h, v++)
      if (next() % 2 === 0) table.add(h, it)
      else table.set(id, h, it)
      model.set(id, it)
      live.push(it)
    } else {
      const k = next() % live.length
      const it = live[k]!
      live[k] = live[live.length - 1]!
      live.pop()
      if (model.get(it.id) !== it) continue
      if (r < 80) {
        assert.equal(table.delete(it.id, it.hash), true)
        model.delete(it.id)
        gone.push(it)
      } else if (r < 92) {
        assert.equal(table.remove(it), true)
        assert.equal(table.remove(it), false, 'removed once')
        model.delete(it.id)
        gone.push(it)
      } else { // replace: same id and hash, another cell
        const again = item(table, it.id, it.hash, v++)
        table.set(it.id, it.hash, again)
        model.set(it.id, again)
        live.push(again)
        assert.equal(table.remove(it), false, 'the replaced cell is no longer in the table')
      }
    }
    if (table.slots !== slots) {
      doublings++
      slots = table.slots
      checkAll(table, model, gone) // right after each rebuild
    } else if (op % 25_013 === 0) {
      checkAll(table, model, gone)
    }
  }
  checkAll(table, model, gone)
  assert.ok(doublings >= 10, `the table doubled ${doublings} times`)
  // and emptied, then used again
  for (const it of [...model.values()]) assert.equal(table.remove(it), true)
  assert.equal(table.size, 0)
  assert.deepEqual([...table.values()], [])
  const it = item(table, 'after', 5, -1)
  table.add(5, it)
  assert.equal(table.get('after', 5), it)
  table.clear()
  assert.equal(table.get('after', 5), undefined)
  assert.equal(table.size, 0)
})

test('a slot\'s tag matching is not a hit: the hash and then the id are compared', () => {
  const table = new AgentTable<Item>(8)
  // hashes 64 apart below 2^16 have equal tags (equal low 6 bits, equal high half); of
  // those, one with the same home slot in 8 slots (the top 3 bits of h × 0x9e3779b9)
  const h1 = 100
  let h2 = h1 + 64
  while (Math.imul(h2, 0x9e3779b9) >>> 29 !== Math.imul(h1, 0x9e3779b9) >>> 29) h2 += 64
  assert.ok(h2 < 1 << 16)
  const a = item(table, 'same', h1, 1)
  table.add(h1, a)
  assert.equal(table.get('same', h2), undefined, 'equal id, equal tag, equal home, another hash')
  const bytes = Buffer.from('same')
  assert.equal(table.getBytes(h2, bytes, 0, 4), undefined)
  assert.equal(table.delete('same', h2), false)
  const b = item(table, 'same', h2, 2)
  table.set('same', h2, b) // another agent (another hash), not a replace of a
  assert.equal(table.size, 2)
  assert.equal(table.get('same', h1), a)
  assert.equal(table.get('same', h2), b)
  const c = item(table, 'other', h1, 3)
  table.add(h1, c)
  assert.equal(table.get('other', h1), c, 'equal hash, another id')
  assert.equal(table.homeCell(h1), a, 'the home slot\'s cell, as a prefetch hint')
  assert.ok(table.delete('same', h2))
  assert.equal(table.get('same', h1), a)
  assert.equal(table.get('same', h2), undefined)
})

test('values() yields the cells in the order they were placed, a freed place reused first', () => {
  const table = new AgentTable<Item>(8)
  const its = Array.from({ length: 20 }, (_, i) => item(table, `o${i}`, Math.imul(i + 1, 0x85ebca6b), i))
  for (const it of its) table.add(it.hash, it)
  assert.deepEqual([...table.values()].map((it) => it.v), its.map((it) => it.v))
  assert.ok(table.remove(its[3]!))
  assert.ok(table.remove(its[11]!))
  const late = item(table, 'late', 77, 99)
  table.add(77, late)
  // the last freed place (11's) is taken first
  assert.deepEqual([...table.values()].map((it) => it.v), [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 99, 12, 13, 14, 15, 16, 17, 18, 19])
})

test('a table past MAX_CELLS cells refuses the next one with a typed error, and a freed index is still taken', () => {
  const table = new AgentTable<Item>(8)
  const a = item(table, 'a', 1, 1)
  table.add(1, a)
  // 67M cells are too many for a unit test: the index counter is moved to the cap
  ;(table as unknown as { next: number }).next = MAX_CELLS
  const b = item(table, 'b', 2, 2)
  assert.throws(() => table.add(2, b), (err: unknown) => err instanceof CapacityExceededError &&
    (err as CapacityExceededError).code === 'SHOAL_ERR_CAPACITY_EXCEEDED' &&
    (err.data as { limit: number }).limit === MAX_CELLS)
  assert.throws(() => table.set('b', 2, b), CapacityExceededError)
  assert.equal(table.get('b', 2), undefined)
  assert.equal(table.size, 1)
  assert.equal((table as unknown as { used: number }).used, 1, 'no slot counted for the refused cell')
  assert.ok(table.remove(a))
  table.add(2, b) // a's index, freed
  assert.equal(table.get('b', 2), b)
})
