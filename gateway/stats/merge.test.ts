import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeRule, mergeSamples, workerShare } from './merge.ts';
import { COUNTER, GAUGE, StatsStore, type StatSample } from './store.ts';

const c = (name: string, value: number, used = value !== 0): StatSample => ({ name, kind: COUNTER, value, used });
const g = (name: string, value: number): StatSample => ({ name, kind: GAUGE, value, used: true });

describe('stats across workers', () => {
  test('traffic stats are summed, configuration stats come from the main thread, breaker state is the max', () => {
    const rules: [string, string][] = [
      ['cluster.outbound|80||a.ns.svc.cluster.local.upstream_rq_total', 'sum'],
      ['cluster.outbound|80||a.ns.svc.cluster.local.upstream_cx_active', 'sum'],
      ['cluster.outbound|80||a.ns.svc.cluster.local.membership_healthy', 'main'],
      ['cluster.outbound|80||a.ns.svc.cluster.local.update_success', 'main'],
      ['cluster.outbound|80||a.ns.svc.cluster.local.circuit_breakers.default.rq_pending_open', 'max'],
      ['cluster.outbound|80||a.ns.svc.cluster.local.outlier_detection.ejections_enforced_total', 'main'],
      ['http.outbound_0.0.0.0_8080.downstream_rq_2xx', 'sum'],
      ['listener.0.0.0.0_8080.downstream_cx_total', 'sum'],
      ['listener_manager.total_listeners_active', 'main'],
      ['cluster_manager.cds.update_success', 'main'],
      ['control_plane.connected_state', 'main'],
      ['server.live', 'main'],
      ['server.total_connections', 'sum'],
    ];
    for (const [name, rule] of rules) assert.equal(mergeRule(name), rule, name);
  });

  test('a worker shares only what is not configuration', () => {
    const s = new StatsStore();
    s.inc(s.counter('cluster.c.upstream_rq_total'), 3);
    s.set(s.gauge('cluster.c.membership_total'), 2);
    s.inc(s.counter('listener_manager.listener_added'));
    assert.deepEqual(
      workerShare(s.snapshot()).map((x) => x.name),
      ['cluster.c.upstream_rq_total'],
    );
  });

  test('merging sums, adds stats only a worker has, keeps the main value for config and sorts by name', () => {
    const main = [
      c('cluster.c.upstream_rq_total', 2),
      g('cluster.c.membership_total', 3),
      g('cluster.c.circuit_breakers.default.cx_open', 0),
      c('http.h.downstream_rq_2xx', 0, false),
    ];
    const w1 = [
      c('cluster.c.upstream_rq_total', 5),
      g('cluster.c.membership_total', 3),
      g('cluster.c.circuit_breakers.default.cx_open', 1),
      c('http.h.downstream_rq_2xx', 4),
      c('cluster.c.upstream_rq_503', 1),
    ];
    const w2 = [c('cluster.c.upstream_rq_total', 1), g('cluster.c.circuit_breakers.default.cx_open', 0)];
    const merged = mergeSamples(main, [w1, w2]);
    assert.deepEqual(
      merged.map((s) => [s.name, s.value, s.used]),
      [
        ['cluster.c.circuit_breakers.default.cx_open', 1, true],
        ['cluster.c.membership_total', 3, true],
        ['cluster.c.upstream_rq_503', 1, true],
        ['cluster.c.upstream_rq_total', 8, true],
        ['http.h.downstream_rq_2xx', 4, true],
      ],
    );
    // The inputs are not modified (the main thread's store snapshot may be reused).
    assert.equal(main[0]?.value, 2);
  });
});
