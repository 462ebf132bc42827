// Envoy's panic threshold with outlier ejection, on a real Cluster: below healthy_panic_threshold percent
// healthy hosts Envoy balances over all hosts (lb_healthy_panic); Istio sets the threshold to
// minHealthPercent (0 by default), which disables panic: no healthy host means 503 no healthy upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { StatsStore } from '../stats/store.ts';
import type { envoy } from '../../xds/envoy.ts';
import { Cluster, parseCluster } from './cluster.ts';
import type { Host } from './host.ts';

function cluster(panic: envoy.type.v3.Percent | undefined): { c: Cluster; store: StatsStore } {
  const json: envoy.config.cluster.v3.Cluster = {
    name: 'c',
    type: 'STATIC',
    connect_timeout: '1s',
    lb_policy: 'ROUND_ROBIN',
    load_assignment: {
      cluster_name: 'c',
      endpoints: [{ lb_endpoints: [1, 2, 3, 4].map((i) => ({ endpoint: { address: { socket_address: { address: `10.0.0.${i}`, port_value: 80 } } } })) }],
    },
    outlier_detection: { consecutive_5xx: 1, interval: '60s', base_ejection_time: '60s', max_ejection_percent: 100 },
    ...(panic === undefined ? {} : { common_lb_config: { healthy_panic_threshold: panic } }),
  };
  const store = new StatsStore();
  const c = new Cluster(parseCluster(json), json, store, { versionInfo: '1', addedViaApi: true, log: pino({ level: 'silent' }) });
  return { c, store };
}

function eject(c: Cluster, n: number): void {
  for (const h of c.hosts.slice(0, n)) c.outlier?.putHttpResponseCode(h, 500);
}

function picks(c: Cluster, n = 40): Set<Host | undefined> {
  const s = new Set<Host | undefined>();
  for (let i = 0; i < n; i++) s.add(c.chooseHost());
  return s;
}

const cases: { name: string; panic: envoy.type.v3.Percent | undefined; ejected: number; want: number; panicking: boolean }[] = [
  { name: "Envoy's default 50%: 2 of 4 ejected (50% healthy) -> only healthy hosts", panic: undefined, ejected: 2, want: 2, panicking: false },
  { name: "Envoy's default 50%: 3 of 4 ejected (25% healthy) -> panic, all 4 hosts", panic: undefined, ejected: 3, want: 4, panicking: true },
  { name: 'Istio (threshold 0): 3 of 4 ejected -> only the healthy one', panic: { value: 0 }, ejected: 3, want: 1, panicking: false },
  { name: 'Istio (threshold 0): all ejected -> no host at all (503 no healthy upstream)', panic: { value: 0 }, ejected: 4, want: 0, panicking: false },
  { name: "istiod's literal {} (0%): all ejected -> no host at all, no panic", panic: {}, ejected: 4, want: 0, panicking: false },
  { name: 'minHealthPercent 80: 1 of 4 ejected (75% healthy) -> panic', panic: { value: 80 }, ejected: 1, want: 4, panicking: true },
  { name: 'threshold 75.4 rounds to 75 (as Envoy): 1 of 4 ejected (75% healthy) -> no panic', panic: { value: 75.4 }, ejected: 1, want: 3, panicking: false },
];

for (const k of cases) {
  test(`panic threshold: ${k.name}`, () => {
    const { c, store } = cluster(k.panic);
    try {
      eject(c, k.ejected);
      assert.equal(c.hosts.filter((h) => h.outlierEjected).length, k.ejected);
      const got = picks(c);
      got.delete(undefined);
      assert.equal(got.size, k.want);
      if (k.want === 0) assert.equal(c.chooseHost(), undefined);
      const panics = store.values[store.counter('cluster.c.lb_healthy_panic')] ?? 0;
      assert.equal(panics > 0, k.panicking);
    } finally {
      c.close();
    }
  });
}

test('healthy_panic_threshold outside [0, 100] is NACKed', () => {
  assert.throws(() => cluster({ value: 101 }), { message: "cluster 'c'.common_lb_config.healthy_panic_threshold.value must be in [0, 100]" });
});
