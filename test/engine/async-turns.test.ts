import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startHost, keyOn } from './helpers.ts'

test('an async handler keeps its agent\'s turns in order while other agents on the same worker proceed', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const a = host.ref('gated', keyOn(1, 'gated', 'a'))
    const b = host.ref('gated', keyOn(1, 'gated', 'b')) // same worker as a
    let aDone = false
    const waiting = a.call('waitFor', 'L1').then((v) => { aDone = true; return v })
    a.cast('note', 'n1')
    const n2 = a.call('note', 'n2')
    // b runs while a is busy: its reply comes back although a's latch is still closed
    assert.equal(await b.call('note', 'b1'), 'b1')
    assert.equal(aDone, false, 'a is still waiting')
    // b opens a's latch (both live on worker 1, so they share the latch)
    await b.call('open', 'L1')
    assert.equal(await waiting, 'L1')
    assert.equal(await n2, 'n2')
    assert.deepEqual(await a.call('log'), ['wait:L1', 'done:L1', 'n1', 'n2'])
    assert.deepEqual(await b.call('log'), ['b1'])
  } finally {
    await host.close()
  }
})

test('many busy agents on one worker each keep their own order', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const refs = Array.from({ length: 50 }, (_, i) => host.ref('gated', keyOn(2, 'gated', 'm', 2, i)))
    const waits = refs.map((r, i) => r.call('waitFor', `M${i}`))
    refs.forEach((r, i) => { for (let j = 0; j < 5; j++) r.cast('note', `${i}.${j}`) })
    const opener = host.ref('gated', keyOn(2, 'gated', 'opener'))
    for (let i = refs.length - 1; i >= 0; i--) await opener.call('open', `M${i}`)
    await Promise.all(waits)
    for (let i = 0; i < refs.length; i++) {
      assert.deepEqual(await refs[i]!.call('log'), [`wait:M${i}`, `done:M${i}`, ...[0, 1, 2, 3, 4].map((j) => `${i}.${j}`)])
    }
  } finally {
    await host.close()
  }
})
