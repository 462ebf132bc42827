import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatScope, StatsStore } from '../stats/store.ts';
import { Host } from './host.ts';
import { LOCAL_ORIGIN_CONNECT_FAILED, LOCAL_ORIGIN_TIMEOUT, OutlierDetector, parseOutlierDetection } from './outlier-detector.ts';
import { ConfigError } from '../xds/json.ts';
import type { envoy } from '../../xds/envoy.ts';
import { ISTIO_OUTLIER_DETECTION as ISTIO } from '../test/fixtures.ts';

function setup(cfg: envoy.config.cluster.v3.OutlierDetection, n = 4) {
  const store = new StatsStore();
  let now = 0;
  const d = new OutlierDetector(parseOutlierDetection(cfg, 'od'), store, new StatScope(store, 'cluster.c.'), { now: () => now, timers: false });
  const hosts = Array.from({ length: n }, (_, i) => new Host(`10.0.0.${i + 1}`, 80));
  d.setHosts(hosts);
  const changes: string[] = [];
  d.onChange = (h) => changes.push(`${h.key}:${h.outlierEjected ? 'out' : 'in'}`);
  const stat = (name: string): number => {
    const v = store.values[store.counter(`cluster.c.outlier_detection.${name}`)] ?? 0;
    return v;
  };
  return { d, hosts, changes, stat, advance: (ms: number) => (now += ms) };
}

test("outlier: defaults are Envoy's", () => {
  const c = parseOutlierDetection({}, 'od');
  assert.deepEqual(
    [
      c.consecutive5xx,
      c.intervalMs,
      c.baseEjectionTimeMs,
      c.maxEjectionTimeMs,
      c.maxEjectionPercent,
      c.enforcingConsecutive5xx,
      c.enforcingConsecutiveGatewayFailure,
    ],
    [5, 10000, 30000, 300000, 10, 100, 0],
  );
  assert.throws(() => parseOutlierDetection({ base_ejection_time: '400s' }, 'od'), ConfigError);
});

test('outlier: N consecutive 5xx eject the host; a success in between resets the count', () => {
  const { d, hosts, changes, stat } = setup(ISTIO);
  const h = hosts[0]!;
  d.putHttpResponseCode(h, 500);
  d.putHttpResponseCode(h, 503);
  d.putHttpResponseCode(h, 200);
  d.putHttpResponseCode(h, 500);
  d.putHttpResponseCode(h, 502);
  assert.equal(h.outlierEjected, false);
  d.putHttpResponseCode(h, 504);
  assert.equal(h.outlierEjected, true);
  assert.deepEqual(changes, ['10.0.0.1:80:out']);
  assert.equal(h.healthy, false);
  assert.deepEqual(
    [stat('ejections_active'), stat('ejections_enforced_total'), stat('ejections_enforced_consecutive_5xx'), stat('ejections_detected_consecutive_5xx')],
    [1, 1, 1, 1],
  );
});

test('outlier: connect failures and timeouts count as 503 / 504 unless split', () => {
  const { d, hosts } = setup(ISTIO);
  const h = hosts[1]!;
  d.putResult(h, LOCAL_ORIGIN_CONNECT_FAILED);
  d.putResult(h, LOCAL_ORIGIN_TIMEOUT);
  d.putResult(h, LOCAL_ORIGIN_CONNECT_FAILED);
  assert.equal(h.outlierEjected, true);
  const split = setup({ ...ISTIO, split_external_local_origin_errors: true, consecutive_local_origin_failure: 2 });
  split.d.putResult(split.hosts[0]!, LOCAL_ORIGIN_CONNECT_FAILED);
  split.d.putHttpResponseCode(split.hosts[0]!, 500);
  assert.equal(split.hosts[0]!.outlierEjected, false);
  split.d.putResult(split.hosts[0]!, LOCAL_ORIGIN_CONNECT_FAILED);
  assert.equal(split.hosts[0]!.outlierEjected, true);
});

test('outlier: ejection time is base x ejections (capped by max), checked on interval ticks', () => {
  const { d, hosts, advance, stat } = setup({ ...ISTIO, max_ejection_time: '25s' });
  const h = hosts[0]!;
  const fail = (): void => {
    for (let i = 0; i < 3; i++) d.putHttpResponseCode(h, 500);
  };
  const expected = [10_000, 20_000, 25_000, 25_000];
  for (const want of expected) {
    fail();
    assert.equal(h.outlierEjected, true);
    assert.equal(d.ejectionTimeMs(h), want);
    advance(want - 1);
    d.onIntervalTimer();
    assert.equal(h.outlierEjected, true, `still out just before ${want} ms`);
    advance(1);
    d.onIntervalTimer();
    assert.equal(h.outlierEjected, false, `back after ${want} ms`);
  }
  assert.equal(stat('ejections_active'), 0);
  // Healthy ticks decay the multiplier: after enough of them the next ejection is base again.
  for (let i = 0; i < 5; i++) d.onIntervalTimer();
  fail();
  assert.equal(d.ejectionTimeMs(h), 10_000);
});

test('outlier: max_ejection_percent caps ejections (ejections_overflow)', () => {
  const { d, hosts, stat } = setup(ISTIO, 4);
  for (const h of hosts) for (let i = 0; i < 3; i++) d.putHttpResponseCode(h, 500);
  // 0% and 25% ejected are below 50%; at 50% the third host overflows.
  assert.deepEqual(
    hosts.map((h) => h.outlierEjected),
    [true, true, false, false],
  );
  assert.equal(stat('ejections_overflow'), 2);
  assert.equal(stat('ejections_active'), 2);
});

test('outlier: consecutive gateway failures only count 502/503/504 and are not enforced by default', () => {
  const { d, hosts, stat } = setup({ consecutive_5xx: 100, consecutive_gateway_failure: 2 });
  d.putHttpResponseCode(hosts[0]!, 503);
  d.putHttpResponseCode(hosts[0]!, 500);
  d.putHttpResponseCode(hosts[0]!, 503);
  assert.equal(stat('ejections_detected_consecutive_gateway_failure'), 0);
  d.putHttpResponseCode(hosts[0]!, 504);
  assert.equal(stat('ejections_detected_consecutive_gateway_failure'), 1);
  assert.equal(hosts[0]!.outlierEjected, false, 'enforcing_consecutive_gateway_failure defaults to 0');
  const enforced = setup({ consecutive_gateway_failure: 2, enforcing_consecutive_gateway_failure: 100 });
  enforced.d.putHttpResponseCode(enforced.hosts[0]!, 502);
  enforced.d.putHttpResponseCode(enforced.hosts[0]!, 503);
  assert.equal(enforced.hosts[0]!.outlierEjected, true);
});

test('outlier: a removed ejected host leaves ejections_active', () => {
  const { d, hosts, stat } = setup(ISTIO);
  for (let i = 0; i < 3; i++) d.putHttpResponseCode(hosts[0]!, 500);
  assert.equal(stat('ejections_active'), 1);
  d.setHosts(hosts.slice(1));
  assert.equal(stat('ejections_active'), 0);
});
