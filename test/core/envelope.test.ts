import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Envelope } from '../../native-free-core/agent/envelope.ts'
import { idString, keyOf } from '../../native-free-core/agent/agent-id.ts'

const utf8 = (b: Uint8Array, at: number, end: number): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8', at, end)

test('an envelope\'s id stays bytes until read; its key comes from the bytes alone', () => {
  // keys may hold anything, the separator too: the id splits on its first two
  for (const [quota, type, key] of [['default', 'counter', 'k1'], ['q.1', 'a/b', ''], ['default', 't', 'é\u001f日本\u001f🦀'], ['x', 'y', '\u001f']]) {
    const id = idString(quota!, type!, key!)
    const frame = Buffer.from(`~~${id}~~`)
    const env = new Envelope()
    let decodes = 0
    env.setIdBytes(frame, 2, frame.length - 4, (b, at, end) => { decodes++; return utf8(b, at, end) })
    assert.equal(env.key(), key)
    assert.equal(decodes, 1, 'the key alone was decoded')
    assert.equal(env.id, id)
    assert.equal(env.id, id)
    assert.equal(decodes, 2, 'the id once, then kept')
    assert.equal(env.key(), keyOf(id))
    env.id = 'default\u001fother\u001fk9' // a string id replaces the bytes
    assert.equal(env.idBytes, null)
    assert.equal(env.key(), 'k9')
  }
})
