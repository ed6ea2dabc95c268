/**
 * Durable reminders on real LMDB files across a real process restart: a child process
 * arms them and is killed with SIGKILL; a new host on the same dataDir (manual clock)
 * fires each one once — the missed periods coalesced — activating agents that are not
 * resident, and keeps the periodic ones going. Also: reminders survive passivation and
 * a worker restart within one host.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { createHost } from '../../src/index.ts'
import type { Host, WorkerRestartEvent } from '../../src/index.ts'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { decodeReminder } from '../../native-free-core/time/agent-reminders.ts'
import { tempDataDir } from './helpers.ts'
import { keyOn } from '../engine/helpers.ts'

const agentsUrl = new URL('../fixtures/reminder-agents.js', import.meta.url)
const childUrl = new URL('../fixtures/reminder-child.js', import.meta.url)
const AGENTS = 8

function reminderHost (dataDir: string): Promise<Host> {
  return createHost({ agents: agentsUrl, workers: 2, dataDir, clock: 'manual', tickMs: 1000 })
}

/** Run the child until it printed `armed`, then SIGKILL it. */
function armAndKill (dataDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childUrl.pathname, dataDir, String(AGENTS)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      out += chunk
      if (out.includes('armed\n')) child.kill('SIGKILL')
    })
    child.on('error', reject)
    child.on('close', (_code, signal) => signal === 'SIGKILL' ? resolve() : reject(new Error(`child ended by itself: ${out}`)))
  })
}

async function storedReminders (dataDir: string): Promise<Map<string, { due: number, every: number }>> {
  const store = new LmdbStore({ path: dataDir, durability: 'disk' })
  const found = new Map<string, { due: number, every: number }>()
  for (const [id, name, bytes] of store.reminders()) found.set(`${id.split('\u001f')[2]}/${name}`, decodeReminder(bytes)!)
  await store.close()
  return found
}

const totalReminders = (host: Host): number => host.stats().workers.reduce((n, w) => n + w.reminders, 0)
const fired = async (host: Host, key: string): Promise<Array<[string, number]>> =>
  (await host.ref('reminded', key).call('fired') as Array<[string, number]>).sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1))

test('after kill -9 and a restart, each stored reminder fires once, coalesced; periodic ones go on', async () => {
  const dataDir = tempDataDir()
  const armedBefore = Date.now()
  await armAndKill(dataDir)
  const stored = await storedReminders(dataDir)
  assert.equal(stored.size, AGENTS * 2, 'every and once per agent; the cancelled one is gone')
  for (const [name, r] of stored) {
    assert.ok(r.due >= armedBefore + 100, name)
    assert.equal(r.every, name.endsWith('/every') ? 100 : 0, name)
  }

  let host = await reminderHost(dataDir)
  try {
    await host.advance(0)
    assert.equal(totalReminders(host), AGENTS * 2, 'each worker read the reminders of its agents')
    assert.equal(host.stats().activeAgents, 0, 'nothing is resident before a reminder is due')
    await host.advance(1) // a second after this host started: every reminder is past due, 'every' by ≥ 10 periods
    assert.equal(host.stats().activeAgents, AGENTS, 'the reminders activated their agents')
    for (let i = 0; i < AGENTS; i++) assert.deepEqual(await fired(host, `r${i}`), [['every', 1], ['once', 1]], `r${i}`)
    await host.advance(1)
    for (let i = 0; i < AGENTS; i++) assert.deepEqual(await fired(host, `r${i}`), [['every', 1], ['once', 1], ['every', 2]], `r${i}`)
    assert.equal(totalReminders(host), AGENTS)
  } finally {
    await host.close()
  }

  // what the store holds now: the periodic reminders, due after the last firing
  const after = await storedReminders(dataDir)
  assert.deepEqual([...after.keys()].sort(), Array.from({ length: AGENTS }, (_, i) => `r${i}/every`).sort())
  // a clean restart: the committed firings stay, the periodic reminder goes on. (Its due
  // time is in the first host's manual-clock time, up to 2.1 s after that host started,
  // so it falls due by this host's tick 3 whenever this host starts.)
  host = await reminderHost(dataDir)
  try {
    await host.advance(3)
    const all = await fired(host, 'r0')
    assert.equal(all.filter(([n]) => n === 'once').length, 1, 'a one-shot reminder never fires twice')
    assert.ok(all.filter(([n]) => n === 'every').length >= 3, JSON.stringify(all))
  } finally {
    await host.close()
  }
})

test('within one host: a reminder survives passivation and its worker\'s restart', async () => {
  const dataDir = tempDataDir()
  const host = await reminderHost(dataDir)
  try {
    const key = keyOn(1, 'reminded', 'w')
    await host.ref('reminded', key).call('remind', { name: 'late', ms: 5_000 })
    await host.advance(3)
    assert.equal(host.stats().activeAgents, 0, 'passivated (idleTicks 2)')
    const restarted = once(host, 'worker-restart') as Promise<[WorkerRestartEvent]>
    await assert.rejects(host.ref('reminded', keyOn(1, 'reminded', 'x')).call('exit'), { code: 'SHOAL_ERR_WORKER_CRASHED' })
    assert.equal((await restarted)[0].thread, 1)
    await host.ref('reminded', keyOn(1, 'reminded', 'x')).call('fired') // waits for the new worker
    await host.advance(0)
    assert.equal(totalReminders(host), 1, 'the new worker read it from the store')
    await host.advance(2) // tick 5: due
    assert.deepEqual(await fired(host, key), [['late', 5]])
  } finally {
    await host.close()
  }
})
