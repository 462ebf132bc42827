import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Host } from './host.ts';
import { RingHashLoadBalancer } from './ring-hash.ts';
import { MaglevLoadBalancer } from './maglev.ts';
import { uint64ToHex, xxHash64 } from './xxhash64.ts';

const vectors: [string, string][] = [
  ['', 'ef46db3751d8e999'],
  ['a', 'd24ec4f1a98c6e5b'],
  ['abc', '44bc2cf5ad770999'],
  // 39 bytes: exercises the 32-byte stripe loop.
  ['Nobody inspects the spammish repetition', 'fbcea83c8a378bf1'],
];
for (const [input, want] of vectors) {
  test(`xxHash64(${JSON.stringify(input)}) = ${want}`, () => assert.equal(uint64ToHex(xxHash64(input)), want));
}

function hosts(n: number, weight = (_i: number) => 1): Host[] {
  return Array.from({ length: n }, (_, i) => {
    const h = new Host(`10.0.0.${i + 1}`, 8080);
    h.weight = weight(i);
    return h;
  });
}

const lbs = [
  { name: 'ring hash', make: (hs: Host[]) => new RingHashLoadBalancer(hs, 1024) },
  { name: 'maglev', make: (hs: Host[]) => new MaglevLoadBalancer(hs) },
];

for (const lb of lbs) {
  test(`${lb.name}: the same key always picks the same host`, () => {
    const b = lb.make(hosts(5));
    for (let k = 0; k < 200; k++) {
      const h = xxHash64(`user-${k}`);
      const first = b.choose(h);
      assert.ok(first);
      for (let j = 0; j < 3; j++) assert.equal(b.choose(h), first);
    }
  });

  test(`${lb.name}: keys spread over equal-weight hosts within 20% of fair`, () => {
    const hs = hosts(4);
    const b = lb.make(hs);
    const count = new Map<Host, number>();
    const n = 20000;
    for (let k = 0; k < n; k++) {
      const h = b.choose(xxHash64(`key-${k}`)) as Host;
      count.set(h, (count.get(h) ?? 0) + 1);
    }
    for (const h of hs) {
      const share = (count.get(h) ?? 0) / n;
      assert.ok(Math.abs(share - 0.25) < 0.05, `${h.key} got ${share}`);
    }
  });

  test(`${lb.name}: a weight-3 host gets about three times the keys of a weight-1 host`, () => {
    const hs = hosts(2, (i) => (i === 0 ? 3 : 1));
    const b = lb.make(hs);
    let heavy = 0;
    const n = 20000;
    for (let k = 0; k < n; k++) if (b.choose(xxHash64(`k${k}`)) === hs[0]) heavy++;
    assert.ok(Math.abs(heavy / n - 0.75) < 0.05, `heavy share ${heavy / n}`);
  });

  test(`${lb.name}: removing one of five hosts keeps most keys where they were`, () => {
    const hs = hosts(5);
    const before = lb.make(hs);
    const after = lb.make(hs.slice(0, 4));
    let moved = 0;
    let movedFromKept = 0;
    const n = 5000;
    for (let k = 0; k < n; k++) {
      const key = xxHash64(`session-${k}`);
      const a = before.choose(key);
      const b = after.choose(key);
      if (a !== b) {
        moved++;
        if (a !== hs[4]) movedFromKept++;
      }
    }
    // The removed host's ~20% must move; the rest mostly stays (the ring is rescaled, so a few keys of
    // kept hosts move too; a modulo scheme would move ~80%).
    assert.ok(moved / n >= 0.15 && moved / n < 0.45, `moved ${moved / n}`);
    assert.ok(movedFromKept / n < 0.25, `keys of kept hosts moved: ${movedFromKept / n}`);
  });

  test(`${lb.name}: no hosts -> undefined`, () => assert.equal(lb.make([]).choose(1n), undefined));
}

test('ring hash: the ring holds at least minimum_ring_size entries, the lightest host a whole number', () => {
  assert.equal(new RingHashLoadBalancer(hosts(3), 1024).size, 1024 + 2); // ceil(1/3*1024)/(1/3) = 1026
  assert.equal(new RingHashLoadBalancer(hosts(4), 1024).size, 1024);
  const weighted = new RingHashLoadBalancer(
    hosts(2, (i) => (i === 0 ? 3 : 1)),
    100,
  );
  const counts = new Map<string, number>();
  for (const h of weighted.hosts) counts.set(h.key, (counts.get(h.key) ?? 0) + 1);
  assert.deepEqual(
    [...counts.values()].sort((a, b) => a - b),
    [25, 75],
  );
  // Sorted ascending by hash.
  for (let i = 1; i < weighted.hashes.length; i++) assert.ok((weighted.hashes[i - 1] as bigint) <= (weighted.hashes[i] as bigint));
});

test('ring hash: a hash above the last entry wraps to the first entry', () => {
  const b = new RingHashLoadBalancer(hosts(3), 16);
  assert.equal(b.choose((1n << 64n) - 1n), b.hosts[0]);
  assert.equal(b.choose(0n), b.hosts[0]);
  assert.equal(b.choose(b.hashes[5] as bigint), b.hosts[5]);
  assert.equal(b.choose((b.hashes[5] as bigint) + 1n), b.hosts[6]);
});

test('maglev: the table (65537 entries) is completely filled, in proportion to weights', () => {
  const hs = hosts(3, (i) => i + 1);
  const m = new MaglevLoadBalancer(hs);
  assert.equal(m.table.length, 65537);
  const c = [0, 0, 0];
  for (const h of m.table) c[hs.indexOf(h as Host)] = (c[hs.indexOf(h as Host)] ?? 0) + 1;
  assert.equal(c[0]! + c[1]! + c[2]!, 65537);
  assert.ok(Math.abs(c[0]! / 65537 - 1 / 6) < 0.01 && Math.abs(c[2]! / 65537 - 3 / 6) < 0.01, String(c));
});
