import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSlowStart, slowStartWeight } from './slow-start.ts';
import { RoundRobinLoadBalancer } from './round-robin.ts';
import { Host } from './host.ts';
import { ConfigError } from '../xds/json.ts';
import type { envoy } from '../../xds/envoy.ts';

test('slow start: parse Istio warmup (window, aggression, minimum percent) and the legacy window-only form', () => {
  assert.deepEqual(parseSlowStart({ slow_start_window: '30s', aggression: { default_value: 2, runtime_key: '(' }, min_weight_percent: { value: 10 } }, 'ss'), {
    windowMs: 30000,
    aggression: 2,
    minWeight: 0.1,
  });
  assert.deepEqual(parseSlowStart({ slow_start_window: '60s' }, 'ss'), { windowMs: 60000, aggression: 1, minWeight: 0.1 });
  assert.equal(parseSlowStart(undefined, 'ss'), undefined);
  assert.throws(() => parseSlowStart({ slow_start_window: '1s', min_weight_percent: { value: 150 } }, 'ss'), ConfigError);
});

const cases: { name: string; age: number; aggression: number; min: number; want: number }[] = [
  { name: 'linear ramp: a quarter of the window -> a quarter of the weight', age: 25_000, aggression: 1, min: 0.1, want: 25 },
  { name: 'the minimum weight applies early on', age: 1_000, aggression: 1, min: 0.1, want: 10 },
  { name: 'aggression 2: time_factor^(1/2)', age: 25_000, aggression: 2, min: 0.1, want: 50 },
  { name: 'aggression 0.5: time_factor^2, floored by the minimum', age: 25_000, aggression: 0.5, min: 0.1, want: 10 },
  { name: 'past the window: the full weight', age: 100_000, aggression: 1, min: 0.1, want: 100 },
  { name: 'age 0 counts as 1 ms', age: 0, aggression: 1, min: 0, want: 0.001 },
];
for (const c of cases) {
  test(`slow start weight: ${c.name}`, () => {
    const w = slowStartWeight(100, c.age, { windowMs: 100_000, aggression: c.aggression, minWeight: c.min });
    assert.ok(Math.abs(w - c.want) < 1e-9, `${w}`);
  });
}

test('slow start: a round robin over an old host and a new one at 25% weight sends the new one a fifth of the traffic', () => {
  const old = new Host('10.0.0.1', 80);
  const fresh = new Host('10.0.0.2', 80);
  const lb = new RoundRobinLoadBalancer(
    [old, fresh],
    () => 0,
    (h) => (h === fresh ? 25 : 100),
  );
  let n = 0;
  for (let i = 0; i < 1000; i++) if (lb.choose() === fresh) n++;
  assert.ok(Math.abs(n / 1000 - 0.2) < 0.01, `${n}`);
});

test('slow start on a Cluster: a host added later ramps up from min_weight_percent while the others keep full weight', async () => {
  const { pino } = await import('pino');
  const { StatsStore } = await import('../stats/store.ts');
  const { Cluster, parseCluster } = await import('./cluster.ts');
  const ep = (i: number) => ({ endpoint: { address: { socket_address: { address: `10.0.0.${i}`, port_value: 80 } } } });
  const json: envoy.config.cluster.v3.Cluster = {
    name: 'ss',
    type: 'STATIC',
    connect_timeout: '1s',
    lb_policy: 'ROUND_ROBIN',
    round_robin_lb_config: {
      slow_start_config: { slow_start_window: '60s', aggression: { default_value: 1, runtime_key: '(' }, min_weight_percent: { value: 10 } },
    },
    load_assignment: { cluster_name: 'ss', endpoints: [{ lb_endpoints: [ep(1), ep(2)] }] },
  };
  const c = new Cluster(parseCluster(json), json, new StatsStore(), { versionInfo: '1', addedViaApi: true, log: pino({ level: 'silent' }) });
  try {
    // Hosts present from the start are equally new: an even split.
    const first = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const k = c.chooseHost()?.key ?? '';
      first.set(k, (first.get(k) ?? 0) + 1);
    }
    assert.ok(Math.abs((first.get('10.0.0.1:80') ?? 0) - 500) <= 10, JSON.stringify([...first]));
    // Make the first two old, then add a third: it gets ~10% weight (0.1 / 2.1 of the picks).
    for (const h of c.hosts) (h as { createdAt: number }).createdAt -= 120_000;
    c.setHosts(
      [1, 2, 3].map((i) => ({
        address: `10.0.0.${i}`,
        port: 80,
        weight: 1,
        health: 0,
        priority: 0,
        hostname: '',
        locality: { region: '', zone: '', sub_zone: '' },
        workload: '',
      })),
    );
    let fresh = 0;
    for (let i = 0; i < 2100; i++) if (c.chooseHost()?.key === '10.0.0.3:80') fresh++;
    assert.ok(fresh >= 80 && fresh <= 130, `new host got ${fresh} of 2100`);
  } finally {
    c.close();
  }
});
