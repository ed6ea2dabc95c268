/**
 * ref.follow() on real worker threads: the current state first, then every committed
 * state; several followers at once; leaving the loop unsubscribes on the owning worker;
 * it works wherever the agent lives, across rollbacks, deletes and a worker restart.
 *
 * Ordering is deterministic without waiting: a command's committed state is published
 * on the worker → main ring before its reply, so once `call` resolves its state has
 * already reached the follower.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { keyOn, startHost } from './helpers.ts'
import type { Host } from '../../src/index.ts'

async function take<T> (it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = []
  for (let i = 0; i < n; i++) {
    const r = await it.next()
    assert.equal(r.done, false)
    out.push(r.value)
  }
  return out
}

function followersOn (host: Host, thread: number): number {
  return host.stats().workers.find((w) => w.thread === thread)!.followers
}

test('follow yields the current state, then each committed state, on whichever worker owns the agent', async () => {
  const host = await startHost({ workers: 2 })
  try {
    for (const thread of [1, 2]) {
      const c = host.ref('followed', keyOn(thread, 'followed'))
      await c.call('add', 5)
      const it = c.follow()
      assert.deepEqual(await take(it, 1), [{ key: c.key, n: 5 }], 'current state first')
      await c.call('add', 1)
      await c.call('add', 2)
      assert.deepEqual(await take(it, 2), [{ key: c.key, n: 6 }, { key: c.key, n: 8 }])
      assert.equal(followersOn(host, thread), 1)
      await it.return!()
    }
  } finally {
    await host.close()
  }
})

test('several followers at once, of one agent and of agents on both workers', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const a = host.ref('followed', keyOn(1, 'followed', 'a'))
    const b = host.ref('followed', keyOn(2, 'followed', 'b'))
    const a1 = a.follow()
    const a2 = a.follow()
    const b1 = b.follow()
    await a.call('add', 1)
    await b.call('add', 10)
    const a3 = a.follow() // joins later: starts from the state then
    await a.call('add', 1)
    assert.deepEqual((await take(a1, 3)).map((s) => s.n), [0, 1, 2])
    assert.deepEqual((await take(a2, 3)).map((s) => s.n), [0, 1, 2])
    assert.deepEqual((await take(a3, 2)).map((s) => s.n), [1, 2])
    assert.deepEqual((await take(b1, 2)).map((s) => s.n), [0, 10])
    assert.equal(followersOn(host, 1), 3)
    assert.equal(followersOn(host, 2), 1)
    await Promise.all([a1.return!(), a2.return!(), a3.return!(), b1.return!()])
  } finally {
    await host.close()
  }
})

test('leaving the for-await loop unsubscribes: the worker forgets the follower', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const c = host.ref('followed', keyOn(2, 'followed'))
    const seen: number[] = []
    const loop = (async () => {
      for await (const s of c.follow()) {
        seen.push(s.n)
        if (s.n === 2) break
      }
    })()
    await c.call('add', 1)
    await c.call('add', 1)
    await loop
    assert.deepEqual(seen, [0, 1, 2])
    // the unsubscription travels on the same ring as this call: processed before it
    await c.call('add', 1)
    assert.equal(followersOn(host, 2), 0)
    // an AbortSignal ends a loop too
    const ac = new AbortController()
    const it = c.follow({ signal: ac.signal })
    assert.deepEqual((await take(it, 1)).map((s) => s.n), [3])
    const pending = it.next()
    ac.abort()
    assert.deepEqual(await pending, { value: undefined, done: true })
    await c.call('get')
    assert.equal(followersOn(host, 2), 0)
  } finally {
    await host.close()
  }
})

test('following activates nothing; rollbacks publish nothing; a delete publishes the fresh state', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const c = host.ref('followed', keyOn(1, 'followed', 'fresh'))
    const it = c.follow()
    assert.deepEqual(await take(it, 1), [{ key: c.key, n: 0 }], 'initial(key) of an agent that does not exist yet')
    assert.equal(host.stats().workers.find((w) => w.thread === 1)!.activeAgents, 0)
    await c.call('add', 4)
    await assert.rejects(c.call('fail'), { code: 'SHOAL_ERR_AGENT' })
    await c.call('add', 1) // after the rollback the follower is still there
    await c.call('remove')
    await c.call('add', 7)
    assert.deepEqual((await take(it, 4)).map((s) => s.n), [4, 5, 0, 7])
    await it.return!()
  } finally {
    await host.close()
  }
})

test('memory-only agents publish at the end of each command; a follow waits out a busy turn', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const e = host.ref('ephemeral', keyOn(2, 'ephemeral'))
    await e.call('add', 2)
    // both frames leave in one ring publish: the worker sees the follow while the turn is busy
    const slow = e.call('slowAdd', 3)
    const it = e.follow()
    await slow
    await e.call('add', 1)
    // subscribed during the busy turn: its first state is the one that turn left
    assert.deepEqual(await take(it, 2), [{ n: 5 }, { n: 6 }])
    await it.return!()
  } finally {
    await host.close()
  }
})

test('a worker restart renews the subscription on the new worker; close ends every loop', async () => {
  const host = await startHost({ workers: 2 })
  const key = keyOn(1, 'followed', 'r')
  const c = host.ref('followed', key)
  const it = c.follow()
  try {
    await c.call('add', 3)
    assert.deepEqual((await take(it, 2)).map((s) => s.n), [0, 3])
    const restarted = once(host, 'worker-restart')
    await assert.rejects(host.ref('crasher', keyOn(1, 'crasher')).call('exit'), { code: 'SHOAL_ERR_WORKER_CRASHED' })
    await restarted
    // the in-memory state died with the worker: the new one starts from initial and says so
    assert.deepEqual((await take(it, 1)).map((s) => s.n), [0])
    await c.call('add', 2)
    assert.deepEqual((await take(it, 1)).map((s) => s.n), [2])
    const waiting = it.next()
    await host.close()
    assert.deepEqual(await waiting, { value: undefined, done: true })
    assert.throws(() => c.follow(), { code: 'SHOAL_ERR_HOST_CLOSED' })
  } finally {
    await host.close()
  }
})
