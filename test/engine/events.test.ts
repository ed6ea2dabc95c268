/**
 * Typed host events. The type checks run when the test suite compiles: an unknown event
 * name or a listener of the wrong shape fails `tsc` (the @ts-expect-error lines would be
 * unused otherwise). At run time: 'agent-error' carries the rebuilt ShoalError and the
 * agent's id.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { AgentError, ShoalError } from '../../src/index.ts'
import type { AgentErrorEvent, Host, WorkerRestartEvent } from '../../src/index.ts'
import { keyOn, startHost } from './helpers.ts'

/** Never called: compiled for its types only. */
export function typesOnly (host: Host): void {
  host.on('worker-restart', (e: WorkerRestartEvent) => { const t: number = e.thread; void t })
  host.on('agent-error', (e) => { const err: ShoalError = e.error; const key: string | undefined = e.id?.key; void err; void key })
  // @ts-expect-error not an event of the host
  host.on('no-such-event', () => {})
  // @ts-expect-error the listener's argument has the wrong shape
  host.on('agent-error', (e: { thread: number }) => { void e })
}

test('agent-error events carry the agent id and the rebuilt, typed error', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const f = host.ref('fragile', keyOn(2, 'fragile'))
    const event = once(host, 'agent-error') as Promise<[AgentErrorEvent]>
    await assert.rejects(f.call('addThenThrow', 3), { code: 'SHOAL_ERR_AGENT' })
    const [e] = await event
    assert.deepEqual(e.id, { quota: 'default', type: 'fragile', key: f.key })
    assert.equal(e.method, 'addThenThrow')
    assert.ok(e.error instanceof AgentError)
    assert.equal(e.error.message, 'refused 3')
  } finally {
    await host.close()
  }
})
