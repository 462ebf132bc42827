import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { StatsStore, StatScope } from './store.ts';
import { extractTags, renderPrometheus, renderText, selectStats } from './render.ts';
import { compileRe2, isRe2Error, type Re2 } from '../../xds/re2.ts';

function re2(pattern: string): Re2 {
  const r = compileRe2(pattern);
  if (isRe2Error(r)) throw new Error(r.message);
  return r;
}

describe('stats store', () => {
  test('text is sorted `name: value`; usedonly and filter select', () => {
    const s = new StatsStore();
    const b = s.counter('b.count');
    s.counter('a.unused');
    s.gauge('c.gauge');
    s.inc(b);
    s.inc(b);
    assert.equal(renderText(selectStats(s.snapshot(), {})), 'a.unused: 0\nb.count: 2\nc.gauge: 0\n');
    assert.equal(renderText(selectStats(s.snapshot(), { usedOnly: true })), 'b.count: 2\n');
    assert.equal(renderText(selectStats(s.snapshot(), { filter: re2('^c\\.') })), 'c.gauge: 0\n');
  });
  test('scopes are reference counted: a replaced owner keeps values, a removed one disappears', () => {
    const s = new StatsStore();
    const a = new StatScope(s, 'cluster.x.');
    s.inc(a.counter('upstream_rq_total'));
    const b = new StatScope(s, 'cluster.x.');
    b.counter('upstream_rq_total');
    a.releaseAll();
    assert.equal(s.valueOf('cluster.x.upstream_rq_total'), 1);
    b.releaseAll();
    assert.equal(s.valueOf('cluster.x.upstream_rq_total'), undefined);
  });
  test('reset_counters zeroes counters, not gauges', () => {
    const s = new StatsStore();
    const c = s.counter('c');
    const g = s.gauge('g');
    s.inc(c);
    s.set(g, 5);
    s.resetCounters();
    assert.equal(s.valueOf('c'), 0);
    assert.equal(s.valueOf('g'), 5);
  });
});

describe('Prometheus rendering with Istio tag extraction', () => {
  test('cluster name (alt_stat_name with ;) and response code become labels', () => {
    assert.deepEqual(extractTags('cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_200'), {
      name: 'cluster.upstream_rq',
      tags: [
        ['response_code', '200'],
        ['cluster_name', 'outbound|8000||httpbin.default.svc.cluster.local'],
      ],
    });
    assert.deepEqual(extractTags('cluster.xds-grpc.upstream_rq_2xx'), {
      name: 'cluster.upstream_rq',
      tags: [
        ['response_code_class', '2xx'],
        ['cluster_name', 'xds-grpc'],
      ],
    });
    assert.deepEqual(extractTags('listener.0.0.0.0_8080.downstream_cx_total'), {
      name: 'listener.downstream_cx_total',
      tags: [['listener_address', '0.0.0.0_8080']],
    });
    assert.deepEqual(extractTags('server.live'), { name: 'server.live', tags: [] });
  });
  test('groups with # TYPE, counters before gauges, envoy_ prefix and sanitised names', () => {
    const s = new StatsStore();
    s.inc(s.counter('cluster.outbound|80||a.ns.svc.cluster.local;.upstream_rq_200'), 3);
    s.set(s.gauge('server.live'), 1);
    s.inc(s.counter('http.outbound_0.0.0.0_8080;.downstream_rq_total'));
    assert.equal(
      renderPrometheus(s.snapshot()),
      '# TYPE envoy_cluster_upstream_rq counter\n' +
        'envoy_cluster_upstream_rq{response_code="200",cluster_name="outbound|80||a.ns.svc.cluster.local"} 3\n' +
        '# TYPE envoy_http_downstream_rq_total counter\n' +
        'envoy_http_downstream_rq_total{http_conn_manager_prefix="outbound_0.0.0.0_8080"} 1\n' +
        '# TYPE envoy_server_live gauge\n' +
        'envoy_server_live{} 1\n',
    );
  });
});
