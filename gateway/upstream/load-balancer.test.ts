import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Host } from './host.ts';
import { LeastRequestLoadBalancer } from './least-request.ts';
import { RoundRobinLoadBalancer } from './round-robin.ts';
import { RandomLoadBalancer } from './random.ts';

function hosts(n: number, weights?: number[]): Host[] {
  return Array.from({ length: n }, (_, i) => {
    const h = new Host(`10.0.0.${i + 1}`, 80);
    h.weight = weights?.[i] ?? 1;
    return h;
  });
}

/** A deterministic random source returning the given values in turn. */
function seq(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] as number;
}

describe('LEAST_REQUEST with equal weights: power of two choices', () => {
  test('of the two random picks, the host with fewer active requests wins', () => {
    const hs = hosts(4);
    (hs[0] as Host).activeRq = 5;
    (hs[2] as Host).activeRq = 1;
    // picks index 0 then index 2 -> host 2 (fewer active requests)
    const lb = new LeastRequestLoadBalancer(hs, seq([0.1, 0.6]));
    assert.equal(lb.choose(), hs[2]);
  });
  test('a tie keeps the first pick (Envoy replaces only on strictly fewer)', () => {
    const hs = hosts(4);
    const lb = new LeastRequestLoadBalancer(hs, seq([0.8, 0.3]));
    assert.equal(lb.choose(), hs[3]);
  });
  test('spreads load: a busy host is picked far less often', () => {
    const hs = hosts(3);
    (hs[0] as Host).activeRq = 10;
    const lb = new LeastRequestLoadBalancer(hs);
    const counts = new Map<Host, number>();
    for (let i = 0; i < 3000; i++) {
      const h = lb.choose() as Host;
      counts.set(h, (counts.get(h) ?? 0) + 1);
    }
    // host 0 only wins when both picks land on it: (1/3)^2 = 1/9 of the time.
    const busy = counts.get(hs[0] as Host) ?? 0;
    assert.ok(busy > 200 && busy < 470, `busy host picked ${busy} times of 3000`);
  });
});

describe('weighted selection', () => {
  test('ROUND_ROBIN with equal weights rotates through every host', () => {
    const hs = hosts(3);
    const lb = new RoundRobinLoadBalancer(hs, () => 0);
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map(() => lb.choose()),
      [hs[0], hs[1], hs[2], hs[0], hs[1], hs[2]],
    );
  });
  test('ROUND_ROBIN with weights 1:3 picks in proportion (EDF schedule)', () => {
    const hs = hosts(2, [1, 3]);
    const lb = new RoundRobinLoadBalancer(hs);
    let second = 0;
    for (let i = 0; i < 400; i++) if (lb.choose() === hs[1]) second++;
    assert.equal(second, 300);
  });
  test('LEAST_REQUEST with unequal weights follows weight / (active + 1)', () => {
    const hs = hosts(2, [1, 2]);
    const lb = new LeastRequestLoadBalancer(hs);
    let heavy = 0;
    for (let i = 0; i < 300; i++) if (lb.choose() === hs[1]) heavy++;
    assert.equal(heavy, 200);
  });
  test('RANDOM ignores weights and covers every host', () => {
    const hs = hosts(3, [1, 10, 100]);
    const lb = new RandomLoadBalancer(hs, seq([0, 0.4, 0.9]));
    assert.deepEqual([lb.choose(), lb.choose(), lb.choose()], hs);
  });
  test('no host: undefined (503 no healthy upstream)', () => {
    assert.equal(new LeastRequestLoadBalancer([]).choose(), undefined);
    assert.equal(new RoundRobinLoadBalancer([]).choose(), undefined);
    assert.equal(new RandomLoadBalancer([]).choose(), undefined);
  });
});
