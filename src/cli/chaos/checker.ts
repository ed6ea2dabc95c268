/**
 * After the faults stopped and every host runs again: does the cluster settle, do the
 * durable sends drain, and does the agents' final state agree with the ledger?
 *
 *   settled       every host's `host.cluster.settled()` within `settleTimeoutMs`
 *   drained       no outbox record left on any host within `drainTimeoutMs`
 *   acked adds    every acknowledged add's op id is in its counter's list, at the place
 *                 its answer gave (the answer n means the op was the n-th: an append-only
 *                 list that lost an entry, or two activations each appending, moves it)
 *   no double     no op id appears more often than it was attempted; no id that was never
 *                 attempted appears (the driver retries with the same id, so an attempt
 *                 whose answer was lost may apply: that is at-least-once, not a bug)
 *   transfers     every acknowledged transfer is in its account's `out`; every `out` entry
 *                 has exactly one credit at its receiver; no credit without its transfer
 *   money         the sum of balances is accounts × START, exactly
 *   errors        no caller saw a non-retriable error
 */
import type { ClusterProcs } from '../procs/cluster-procs.ts'
import type { HostProcess } from '../procs/host-process.ts'
import { keysOf } from '../procs/host-protocol.ts'
import type { Agents } from '../procs/host-protocol.ts'
import { ACCOUNT, COUNTER, START, shardOfAgent } from './chaos-agents.ts'
import type { AccountState } from './chaos-agents.ts'
import type { Ledger } from './ledger.ts'

export interface CheckOptions {
  readonly counters: number
  readonly accounts: number
  readonly settleTimeoutMs: number
  readonly drainTimeoutMs: number
}

export interface CheckReport {
  /** Each a broken invariant, said in one line with its evidence. */
  readonly violations: string[]
  /** For a lost update: the counter's final list and the stories of its acknowledged ops. */
  readonly evidence: string[]
  readonly settleMs: number
  readonly drainMs: number
  /** Applications beyond the first of an op that was attempted more than once (allowed). */
  readonly retriedTwice: number
  readonly totalBalance: number
  /** Each host's cluster figures once settled: map epoch, shards served, moves in and out, moves called off. */
  readonly hosts: ReadonlyArray<{ readonly id: string, readonly epoch: number, readonly served: number, readonly movedIn: number, readonly movedOut: number, readonly calledOff: number, readonly staleCopies: number }>
}

interface ClusterStats { cluster: { epoch: number, shardsServed: number, movedIn: number, movedOut: number, movesCalledOff: number, durable: { staleCopies: number } } }

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const kShown = 8

class Unreadable extends Error {
  readonly keys: string[]
  constructor (message: string, keys: string[]) {
    super(message)
    this.keys = keys
  }
}

/** Read every agent of `agents` with `method` through `h`, again until no call fails or the deadline (then Unreadable, naming the keys). */
async function readAll<T> (h: HostProcess, agents: Agents, method: string, deadline: number): Promise<T[]> {
  for (;;) {
    const r = await h.callEach(agents, method, undefined, 32)
    if (r.errors === 0) return r.values as T[]
    if (performance.now() > deadline) {
      const keys = keysOf(agents.keys).filter((_, i) => r.values[i] === undefined)
      throw new Unreadable(`${agents.type}.${method} of ${keys.join(', ')} still failing after the cluster settled, e.g. ${r.errorSamples[0]?.name ?? ''}: ${r.errorSamples[0]?.message ?? ''}`, keys)
    }
    await sleep(200)
  }
}

function capped (lines: string[], what: string): string[] {
  if (lines.length <= kShown) return lines
  return [...lines.slice(0, kShown), `… and ${lines.length - kShown} more ${what}`]
}

/**
 * A host's `[trace]` lines and cluster warnings about `shard` (host-child.ts), ms from the
 * load's start (`t0`, performance.now()). A line tagged DIAG (an ad-hoc diagnostic someone
 * added while hunting a bug) counts only when it names `shard N `.
 */
function shardStory (procs: ClusterProcs, ids: readonly string[], shard: number, t0: number): string[] {
  const wall0 = Date.now() - (performance.now() - t0)
  const lines: Array<[number, string]> = []
  for (const id of ids) {
    for (const [n, log] of procs.logs(id).entries()) {
      for (const line of log.split('\n')) {
        const started = /^\[trace\] (\d+) started, (epoch \d+)/.exec(line)
        if (started !== null) lines.push([Number(started[1]) - wall0, `${id}#${n + 1} started (${started[2]})`])
        const m = /^\[trace\] (\d+) (epoch \d+)(.*)$/.exec(line)
        if (m !== null && new RegExp(`[+-]${shard}(?!\\d)`).test(m[3]!)) lines.push([Number(m[1]) - wall0, `${id}#${n + 1} ${m[2]}${m[3]!.split(' ').filter((x) => x.slice(1) === String(shard)).map((x) => ` ${x}`).join('')}`])
        else if (line.includes('DIAG') ? line.includes(`shard ${shard} `) : line.startsWith('shoal cluster') || /error|warn/i.test(line)) lines.push([Number.NaN, `${id}#${n + 1} ${line}`])
      }
    }
  }
  const timed = lines.filter(([t]) => !Number.isNaN(t)).sort((a, b) => a[0] - b[0]).map(([t, l]) => `${String(Math.round(t)).padStart(6)} ms  ${l}`)
  const other = lines.filter(([t]) => Number.isNaN(t)).map(([, l]) => l)
  return [...timed, ...other.slice(0, 30)]
}

export async function check (procs: ClusterProcs, ledger: Ledger, t0: number, o: CheckOptions): Promise<CheckReport> {
  const violations: string[] = []
  // every host's own view when the cluster does not settle: kept whatever fails after it
  const settleEvidence: string[] = []
  try {
    return await checkState(procs, ledger, t0, o, violations, settleEvidence)
  } catch (err) {
    if (!(err instanceof Unreadable)) throw err
    // an agent that answers nothing once the cluster settled: liveness, with where its shard went
    violations.push(`unavailable: ${err.message}`)
    const [type, key] = err.keys[0]!.startsWith('a') ? [ACCOUNT, err.keys[0]!] : [COUNTER, err.keys[0]!]
    const shard = shardOfAgent(type, key)
    const owner = (await procs.running()[0]!.owners({ type, keys: [key] }))[0]
    const evidence = [...settleEvidence, `${key} (shard ${shard}, owner at the end ${String(owner)}):`, ...shardStory(procs, procs.ids(), shard, t0).map((l) => `  ${l}`)]
    return { violations, evidence, settleMs: -1, drainMs: -1, retriedTwice: 0, totalBalance: Number.NaN, hosts: [] }
  }
}

/** A settle slower than this prints every host's view (as evidence) even when it ends in time. */
const kSlowSettleMs = 5_000

async function checkState (procs: ClusterProcs, ledger: Ledger, t0: number, o: CheckOptions, violations: string[], settleEvidence: string[]): Promise<CheckReport> {
  const hosts = procs.running()
  const reader = hosts[0]!

  let t = performance.now()
  // a settle that ends late is no violation, but which step it waited for is what a fix
  // needs: every host's view, once, if it has not settled after kSlowSettleMs
  let slow: Promise<void> | undefined
  const slowTimer = setTimeout(() => {
    slow = procs.describe().then((views) => {
      settleEvidence.push(`the cluster had not settled ${kSlowSettleMs} ms after the faults; each host's view then:`)
      for (const { id, view } of views) settleEvidence.push(`  ${id}: ${view}`)
    }, () => {})
  }, kSlowSettleMs)
  let unsettled: unknown = null
  try {
    await procs.settled(o.settleTimeoutMs)
  } catch (err) {
    unsettled = err
  }
  const settleMs = performance.now() - t
  clearTimeout(slowTimer)
  await slow // a view asked for meanwhile lands in the evidence first
  if (unsettled !== null) {
    violations.push(`no settle: ${(unsettled as Error).message}`)
    // each host's view now, not only the first timeout's: the old owner of a move that
    // waits is the one that can say why (its moves out, its reconcile step, its holds)
    settleEvidence.push('the cluster did not settle; each host\'s view right after:')
    for (const { id, view } of await procs.describe()) settleEvidence.push(`  ${id}: ${view}`)
  }
  const figures = await Promise.all(hosts.map(async (h) => {
    const c = (await h.stats<ClusterStats>()).cluster
    return { id: h.name, epoch: c.epoch, served: c.shardsServed, movedIn: c.movedIn, movedOut: c.movedOut, calledOff: c.movesCalledOff, staleCopies: c.durable.staleCopies }
  }))

  // drained: no outbox record anywhere, and every transfer credited
  t = performance.now()
  const deadline = t + o.drainTimeoutMs
  const counterAgents: Agents = { type: COUNTER, keys: { prefix: 'c', count: o.counters } }
  const accountAgents: Agents = { type: ACCOUNT, keys: { prefix: 'a', count: o.accounts } }
  let accounts: AccountState[] = []
  let outbox = -1
  for (;;) {
    const backlogs = await Promise.all(hosts.map((h) => h.durableBacklog()))
    outbox = backlogs.reduce((n, b) => n + b.outbox, 0)
    accounts = await readAll<AccountState>(reader, accountAgents, 'state', deadline)
    const sent = accounts.reduce((n, a) => n + Object.keys(a.out).length, 0)
    const credited = accounts.reduce((n, a) => n + a.credits.length, 0)
    if (outbox === 0 && credited >= sent) break // more credits than transfers will not mend: the checks below name them
    if (performance.now() > deadline) {
      const where = backlogs.flatMap((b) => b.outboxWhere ?? [])
      violations.push(`not drained after ${o.drainTimeoutMs} ms: ${outbox} outbox record(s) left, ${sent} transfers applied, ${credited} credits applied${where.length === 0 ? '' : ` (${where.join('; ')})`}`)
      break
    }
    await sleep(200)
  }
  const drainMs = performance.now() - t
  const counters = await readAll<string[]>(reader, counterAgents, 'ops', performance.now() + o.settleTimeoutMs)

  // counters: acked adds present at their place, nothing applied more often than attempted
  const lost: string[] = []
  const moved: string[] = []
  const doubled: string[] = []
  const unknown: string[] = []
  let retriedTwice = 0
  const seen = new Map<string, number>()
  for (const ops of counters) for (const id of ops) seen.set(id, (seen.get(id) ?? 0) + 1)
  for (const [id, n] of seen) {
    const r = ledger.ops.get(id)
    if (r === undefined || r.kind !== 'add') unknown.push(`${id} applied ${n}× but never attempted as an add`)
    else if (n > r.attempts) doubled.push(`${id} on ${r.key}: applied ${n}×, attempted ${r.attempts}×`)
    else if (n > 1) retriedTwice += n - 1
  }
  for (const r of ledger.ops.values()) {
    if (r.kind !== 'add' || !r.acked) continue
    const ops = counters[Number(r.key.slice(1))]!
    if (!ops.includes(r.id)) lost.push(`${r.id} on ${r.key}: acknowledged (answer ${String(r.value)}) but not in the final list of ${ops.length}`)
    else if (ops[(r.value as number) - 1] !== r.id) moved.push(`${r.id} on ${r.key}: acknowledged as #${String(r.value)}, the final list has ${String(ops[(r.value as number) - 1])} there`)
  }

  // transfers: acked ones applied, each applied one credited exactly once
  const lostTransfers: string[] = []
  const credits = new Map<string, number>()
  const out = new Map<string, { from: string, to: string, amount: number }>()
  for (const [i, a] of accounts.entries()) {
    for (const c of a.credits) credits.set(`a${i}:${c}`, (credits.get(`a${i}:${c}`) ?? 0) + 1)
    for (const [id, [to, amount]] of Object.entries(a.out)) out.set(id, { from: `a${i}`, to, amount })
  }
  for (const r of ledger.ops.values()) {
    if (r.kind === 'transfer' && r.acked && !out.has(r.id)) lostTransfers.push(`${r.id} ${r.key} → ${r.to}: acknowledged but not in ${r.key}'s transfers`)
  }
  const creditWrong: string[] = []
  for (const [id, t] of out) {
    const r = ledger.ops.get(id)
    if (r === undefined || r.kind !== 'transfer') creditWrong.push(`${id} in ${t.from}'s transfers but never attempted as a transfer`)
    const n = credits.get(`${t.to}:${id}`) ?? 0
    if (n !== 1) creditWrong.push(`${id} ${t.from} → ${t.to} (${t.amount}): credited ${n}×`)
  }
  for (const [k, n] of credits) {
    const [to, id] = k.split(':') as [string, string]
    if (out.get(id)?.to !== to) creditWrong.push(`credit ${id} at ${to} (${n}×) without its transfer`)
  }
  // evidence for the first counter that lost an op: where it lives, its final list, the acked ops' stories
  const evidence: string[] = [...settleEvidence]
  const firstLost = [...lost, ...moved][0]
  if (firstLost !== undefined) {
    const key = /on (c\d+)/.exec(firstLost)![1]!
    const [owner] = await reader.owners({ type: COUNTER, keys: [key] })
    const ops = counters[Number(key.slice(1))]!
    const shard = shardOfAgent(COUNTER, key)
    evidence.push(`${key} (shard ${shard}, owner at the end ${String(owner)}) final list: ${ops.join(' ')}`)
    evidence.push(`shard ${shard} served (+) and let go (-) by each host process (host#incarnation), then the hosts' warnings:`, ...shardStory(procs, procs.ids(), shard, t0).map((l) => `  ${l}`))
    const acked = [...ledger.ops.values()].filter((r) => r.kind === 'add' && r.key === key && r.acked)
    for (const r of acked.slice(0, 40)) evidence.push(`${ops.includes(r.id) ? '   ' : '!! '}${ledger.story(r.id)}`)
  }
  // evidence for the first send credited wrongly: where its receiver lives and what happened to that shard
  const firstCredit = creditWrong.map((l) => /^(o\d+) (a\d+) → (a\d+) /.exec(l)).find((m) => m !== null)
  if (firstLost === undefined && firstCredit != null) {
    const [, op, from, key] = firstCredit as unknown as [string, string, string, string]
    // the transfer's attempts: a send credited twice with its transfer applied once is either
    // one send applied twice, or a transfer turn lost (with its send out) and applied again
    evidence.push(`the transfer: ${ledger.story(op)}`)
    for (const [who, k] of [['receiver', key], ['sender', from]] as const) {
      const [owner] = await reader.owners({ type: ACCOUNT, keys: [k] })
      const shard = shardOfAgent(ACCOUNT, k)
      evidence.push(`${who} ${k} (shard ${shard}, owner at the end ${String(owner)}): served (+) and let go (-) by each host process${who === 'receiver' ? ', then the hosts\' warnings' : ''}:`,
        ...shardStory(procs, procs.ids(), shard, t0).filter((l) => who === 'receiver' || /^ *-?\d+ ms {2}/.test(l)).map((l) => `  ${l}`))
    }
  }
  const totalBalance = accounts.reduce((n, a) => n + a.balance, 0)
  if (totalBalance !== o.accounts * START) violations.push(`money not conserved: balances sum to ${totalBalance}, expected ${o.accounts * START}`)

  violations.push(
    ...capped(lost, 'lost adds').map((l) => `lost update: ${l}`),
    ...capped(moved, 'moved adds').map((l) => `lost update: ${l}`),
    ...capped(doubled, 'double applies').map((l) => `double apply: ${l}`),
    ...capped(unknown, 'unknown ops').map((l) => `unknown op: ${l}`),
    ...capped(lostTransfers, 'lost transfers').map((l) => `lost transfer: ${l}`),
    ...capped(creditWrong, 'credit errors').map((l) => `durable send: ${l}`),
    ...capped(ledger.errors.fatal.map((f) => `${f.op} via ${f.via}: ${f.error}`), 'errors').map((l) => `non-retriable error: ${l}`)
  )
  return { violations, evidence, settleMs, drainMs, retriedTwice, totalBalance, hosts: figures }
}
