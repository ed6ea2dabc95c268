import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvalidArgumentError, InvalidOptionError } from '../../native-free-core/errors.ts'
import { SHARDS } from '../../native-free-core/placement/hash.ts'
import { HashRing } from '../../native-free-core/placement/hash-ring.ts'
import { isSettled, loadsOf, ownerOf, sameShardMap } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { EtcdMembership } from '../../plugins/cluster/membership/etcd-membership.ts'
import type { Member } from '../../plugins/cluster/membership/membership.ts'
import { StaticMembership } from '../../plugins/cluster/membership/static-membership.ts'

const LIST = ['10.0.0.5:7400', '10.0.0.6:7400', '10.0.0.7:7400']

test('every host of a static list computes the same map at epoch 1, from the ring of the entries', async () => {
  const hosts = LIST.map((address, i) => new StaticMembership({ id: `host-${i}`, address, members: i === 1 ? [...LIST].reverse() : LIST }))
  const seen: Array<{ members?: readonly Member[], leader?: string | undefined, map?: ShardMap }> = []
  for (const h of hosts) {
    const s: (typeof seen)[number] = {}
    seen.push(s)
    h.on('members', (m) => { s.members = m })
    h.on('leader', (l) => { s.leader = l })
    h.on('map', (m) => { s.map = m })
    await h.start()
  }
  const map = hosts[0]!.map()!
  assert.equal(map.epoch, 1)
  assert.ok(isSettled(map))
  const ring = new HashRing(LIST).assign()
  for (let s = 0; s < SHARDS; s++) assert.equal(ownerOf(map, s), ring[s])
  for (const n of loadsOf(map).values()) assert.ok(Math.abs(n - SHARDS / 3) <= 0.1 * SHARDS / 3)
  for (const [i, h] of hosts.entries()) {
    assert.ok(sameShardMap(h.map()!, map))
    assert.equal(seen[i]!.map, h.map())
    assert.equal(seen[i]!.leader, undefined)
    assert.ok('leader' in seen[i]!)
    assert.deepEqual(seen[i]!.members!.map((m) => m.id), LIST)
    // `host:port` entries: the ring id is the address
    assert.equal(h.self.id, LIST[i])
    assert.equal(h.self.state, 'up')
    assert.equal(h.leader(), undefined)
    assert.equal(h.isLeader, false)
    assert.equal(h.fenced, false)
  }
  assert.equal(await hosts[0]!.until((m) => m.epoch === 1), map)
  await hosts[0]!.setState('leaving')
  assert.equal(seen[0]!.members!.find((m) => m.id === LIST[0])!.state, 'leaving')
  assert.equal(hosts[0]!.map(), map, 'no moves: the map stays')
  await assert.rejects(hosts[0]!.reportHandover([1], LIST[0]!, LIST[1]!, 1), InvalidArgumentError)
  await Promise.all(hosts.map(async (h) => await h.close()))
})

test('id@host:port entries use the ids; this host is found by id or by address', async () => {
  const list = ['b@127.0.0.1:7402', 'a@127.0.0.1:7401', '127.0.0.1:7403']
  const byId = new StaticMembership({ id: 'a', address: '127.0.0.1:7401', members: list })
  const byAddress = new StaticMembership({ id: 'whatever', address: '127.0.0.1:7403', members: list })
  await byId.start()
  await byAddress.start()
  assert.equal(byId.self.id, 'a')
  assert.equal(byAddress.self.id, '127.0.0.1:7403')
  assert.deepEqual(byId.members().map((m) => [m.id, m.address]), [['127.0.0.1:7403', '127.0.0.1:7403'], ['a', '127.0.0.1:7401'], ['b', '127.0.0.1:7402']])
  assert.ok(sameShardMap(byId.map()!, byAddress.map()!))
  assert.deepEqual(byId.map()!.hosts, ['127.0.0.1:7403', 'a', 'b'])
})

function optionError (fn: () => unknown, option: string, rule: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidOptionError, String(err))
    assert.equal((err.data as { option: string }).option, option)
    assert.match(err.message, rule)
    return true
  })
}

test('bad static options name the option, the value and the rule', () => {
  const ok = { id: 'a', address: '127.0.0.1:7401', members: ['a@127.0.0.1:7401'] }
  optionError(() => new StaticMembership({ ...ok, members: [] }), 'membership.static', /non-empty array/)
  optionError(() => new StaticMembership({ ...ok, members: ['a@127.0.0.1:7401', 'nope'] }), 'membership.static[1]', /"host:port".*got "nope"/)
  optionError(() => new StaticMembership({ ...ok, members: ['a@127.0.0.1:7401', 'a@127.0.0.1:7402'] }), 'membership.static[1]', /once \(id "a" repeats\)/)
  optionError(() => new StaticMembership({ ...ok, members: ['a@127.0.0.1:7401', 'b@127.0.0.1:7401'] }), 'membership.static[1]', /address 127\.0\.0\.1:7401 repeats/)
  optionError(() => new StaticMembership({ ...ok, members: ['b@127.0.0.1:7402'] }), 'membership.static', /must include this host/)
  optionError(() => new StaticMembership({ ...ok, members: ['a@127.0.0.1:9999'] }), 'membership.static', /advertised address 127\.0\.0\.1:7401/)
  optionError(() => new StaticMembership({ ...ok, members: ['b@127.0.0.1:7401'] }), 'membership.static', /names the host at 127\.0\.0\.1:7401 "b"/)
  optionError(() => new StaticMembership({ ...ok, members: [7401 as unknown as string] }), 'membership.static[0]', /got 7401/)
  optionError(() => new StaticMembership({ ...ok, id: 'a b' }), 'id', /without whitespace/)
  optionError(() => new StaticMembership({ ...ok, address: 'localhost' }), 'advertise', /"host:port" with a port from 1 to 65535 \(got "localhost"\)/)
  optionError(() => new StaticMembership({ ...ok, address: 'h:70000' }), 'advertise', /port from 1 to 65535/)
  optionError(() => new StaticMembership({ ...ok, vnodes: 0 }), 'membership.vnodes', /integer from 1 to 4096/)
})

test('bad etcd options name the option, the value and the rule', () => {
  const ok = { id: 'a', address: '127.0.0.1:7401', hosts: ['http://127.0.0.1:2379'] }
  assert.ok(new EtcdMembership({ ...ok, hosts: '127.0.0.1:2379', prefix: '/x/y', leaseTtlS: 10, maxMovesPerHost: 1, vnodes: 64, minMembers: 3 }))
  assert.ok(new EtcdMembership({ ...ok, hosts: ['https://[::1]:2379'], address: '[::1]:7400' }))
  optionError(() => new EtcdMembership({ ...ok, hosts: [] }), 'membership.etcd.hosts', /non-empty array/)
  optionError(() => new EtcdMembership({ ...ok, hosts: ['http://127.0.0.1:2379', 'ftp://x'] }), 'membership.etcd.hosts[1]', /etcd client URL/)
  optionError(() => new EtcdMembership({ ...ok, prefix: 'shoal' }), 'membership.etcd.prefix', /must start with "\/"/)
  optionError(() => new EtcdMembership({ ...ok, prefix: '/shoal/' }), 'membership.etcd.prefix', /not end with "\/"/)
  optionError(() => new EtcdMembership({ ...ok, leaseTtlS: 1 }), 'membership.etcd.leaseTtlS', /integer from 2 to 3600 .* \(got 1\)/)
  optionError(() => new EtcdMembership({ ...ok, leaseTtlS: 2.5 }), 'membership.etcd.leaseTtlS', /got 2\.5/)
  optionError(() => new EtcdMembership({ ...ok, maxMovesPerHost: 0 }), 'membership.etcd.maxMovesPerHost', /≥ 1 or Infinity/)
  optionError(() => new EtcdMembership({ ...ok, vnodes: 5000 }), 'membership.etcd.vnodes', /1 to 4096/)
  optionError(() => new EtcdMembership({ ...ok, minMembers: 0 }), 'membership.etcd.minMembers', /integer from 1/)
  optionError(() => new EtcdMembership({ ...ok, id: '' }), 'id', /1 to 128 characters/)
  optionError(() => new EtcdMembership({ ...ok, id: 'a/b' }), 'id', /"\/"/)
  optionError(() => new EtcdMembership({ ...ok, address: '127.0.0.1' }), 'advertise', /host:port/)
})
