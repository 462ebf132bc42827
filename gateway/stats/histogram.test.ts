// Envoy's histograms in the stats store: recording, the flush that merges threads' values into interval and
// cumulative bins, and the admin's renderings. Expected texts are Envoy's own (test/server/admin/
// stats_handler_test.cc and prometheus_stats_test.cc feed the same values).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { StatsStore, StatScope, type StatSample } from './store.ts';
import { renderJson, renderPrometheus, renderText, selectStats } from './render.ts';
import { mergeSamples, workerShare } from './merge.ts';
import { binLower, binOf, binWidth, computeStatistics, fmtG } from './histogram.ts';
import { prometheusQuery, statsQuery } from '../admin/admin-server.ts';

function lines(text: string): string[] {
  return text.split('\n');
}

describe('histogram arithmetic (libcircllhist as Envoy builds it)', () => {
  const cases: { value: number; lower: number; width: number }[] = [
    { value: 0, lower: 0, width: 0 },
    { value: 0.7, lower: 0, width: 0 },
    { value: 7, lower: 7, width: 0.1 },
    { value: 42, lower: 42, width: 1 },
    { value: 123, lower: 120, width: 10 },
    { value: 3_600_001, lower: 3_600_000, width: 100_000 },
  ];
  for (const c of cases) {
    test(`${c.value} lands in [${c.lower}, ${c.lower + c.width})`, () => {
      const code = binOf(c.value);
      assert.equal(binLower(code), c.lower);
      assert.equal(binWidth(code), c.width);
    });
  }
  test('a bucket counts the samples whose whole bin lies at or below it: 1 is not under le=1, 0 is under 0.5', () => {
    const s = computeStatistics(
      new Map([
        [binOf(0), 1],
        [binOf(1), 1],
        [binOf(5), 2],
      ]),
    );
    assert.deepEqual(s.buckets.slice(0, 4), [1, 1, 2, 4]);
    assert.equal(s.count, 4);
    // Midpoints: 0, 1.05, 5.05 twice.
    assert.equal(s.sum, 0 + 1.05 + 5.05 * 2);
  });
  test('C %g formatting', () => {
    assert.deepEqual(
      [fmtG(1800000, 6), fmtG(300000, 6), fmtG(0.5, 6), fmtG(99.5, 6), fmtG(3600000, 32), fmtG(5.05, 32), fmtG(1e-5, 6)],
      ['1.8e+06', '300000', '0.5', '99.5', '3600000', '5.049999999999999822364316059975', '1e-05'],
    );
  });
});

describe('/stats text', () => {
  test('quantile summary `P<q>(interval,cumulative)` after a flush; histograms after counters', () => {
    const s = new StatsStore();
    s.inc(s.counter('c1'), 10);
    const h1 = s.histogram('h1');
    const h2 = s.histogram('h2');
    s.record(h1, 200);
    s.record(h2, 100);
    s.mergeHistograms();
    assert.equal(
      renderText(s.snapshot()),
      'c1: 10\n' +
        'h1: P0(200,200) P25(202.5,202.5) P50(205,205) P75(207.5,207.5) P90(209,209) P95(209.5,209.5) P99(209.9,209.9) P99.5(209.95,209.95) P99.9(209.99,209.99) P100(210,210)\n' +
        'h2: P0(100,100) P25(102.5,102.5) P50(105,105) P75(107.5,107.5) P90(109,109) P95(109.5,109.5) P99(109.9,109.9) P99.5(109.95,109.95) P99.9(109.99,109.99) P100(110,110)\n',
    );
  });
  test('values appear only after a flush; a flush without new values leaves an empty (nan) interval', () => {
    const s = new StatsStore();
    const h = s.histogram('h');
    s.record(h, 200);
    assert.equal(renderText(s.snapshot()), 'h: No recorded values\n');
    assert.equal(renderText(selectStats(s.snapshot(), { usedOnly: true })), '');
    s.mergeHistograms();
    s.mergeHistograms();
    assert.match(renderText(s.snapshot()), /^h: P0\(nan,200\) P25\(nan,202\.5\) .* P100\(nan,210\)\n$/);
  });
  test('histogram_buckets=cumulative and disjoint, as Envoy prints them', () => {
    const s = new StatsStore();
    const h1 = s.histogram('h1');
    s.histogram('h2');
    s.record(h1, 200);
    s.record(h1, 300);
    s.mergeHistograms();
    s.record(h1, 300);
    s.mergeHistograms();
    assert.equal(
      renderText(s.snapshot(), 'disjoint'),
      'h1: B0.5(0,0) B1(0,0) B5(0,0) B10(0,0) B25(0,0) B50(0,0) B100(0,0) B250(0,1) B500(1,2) B1000(0,0) B2500(0,0) B5000(0,0) B10000(0,0) B30000(0,0) B60000(0,0) B300000(0,0) B600000(0,0) B1.8e+06(0,0) B3.6e+06(0,0)\n' +
        'h2: No recorded values\n',
    );
    const c = new StatsStore();
    c.record(c.histogram('h1'), 300);
    c.mergeHistograms();
    assert.equal(
      renderText(c.snapshot(), 'cumulative'),
      'h1: B0.5(0,0) B1(0,0) B5(0,0) B10(0,0) B25(0,0) B50(0,0) B100(0,0) B250(0,0) B500(1,1) B1000(1,1) B2500(1,1) B5000(1,1) B10000(1,1) B30000(1,1) B60000(1,1) B300000(1,1) B600000(1,1) B1.8e+06(1,1) B3.6e+06(1,1)\n',
    );
  });
  test('histogram_buckets: an unknown mode is the admin usage error', () => {
    assert.equal(statsQuery(new URLSearchParams('histogram_buckets=garbage')), 'usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary)\n');
    const q = statsQuery(new URLSearchParams('histogram_buckets=none'));
    assert.ok(typeof q !== 'string' && q.histogramBuckets === 'summary');
  });
  test('a dynamic histogram (upstream_rq_time) is listed only once a flush merged values', () => {
    const s = new StatsStore();
    const scope = new StatScope(s, 'cluster.c.');
    const t = scope.dynamicHistogram('upstream_rq_time');
    assert.deepEqual(
      s.snapshot().map((x) => x.name),
      [],
    );
    s.record(t, 3);
    s.mergeHistograms();
    assert.deepEqual(
      s.snapshot().map((x) => x.name),
      ['cluster.c.upstream_rq_time'],
    );
    scope.releaseAll();
    assert.deepEqual(s.snapshot(), []);
  });
});

describe('/stats?format=json', () => {
  test('one histograms entry: supported_quantiles and computed_quantiles with cumulative and interval (null when empty)', () => {
    const s = new StatsStore();
    const h1 = s.histogram('h1');
    const h2 = s.histogram('h2');
    s.record(h1, 200);
    s.record(h2, 100);
    s.mergeHistograms();
    s.record(h1, 100);
    s.mergeHistograms();
    const q = (cumulative: number[], interval: (number | null)[]) => cumulative.map((c, i) => ({ cumulative: c, interval: interval[i] }));
    assert.deepEqual(JSON.parse(renderJson(s.snapshot())), {
      stats: [
        {
          histograms: {
            supported_quantiles: [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100],
            computed_quantiles: [
              {
                name: 'h1',
                values: q([100, 105, 110, 205, 208, 209, 209.8, 209.9, 209.98, 210], [100, 102.5, 105, 107.5, 109, 109.5, 109.9, 109.95, 109.99, 110]),
              },
              {
                name: 'h2',
                values: q([100, 102.5, 105, 107.5, 109, 109.5, 109.9, 109.95, 109.99, 110], Array<null>(10).fill(null)),
              },
            ],
          },
        },
      ],
    });
  });
  test('histogram_buckets=cumulative: buckets with upper_bound, interval and cumulative; usedonly drops the unused', () => {
    const s = new StatsStore();
    s.inc(s.counter('c1'), 10);
    s.record(s.histogram('h1'), 300);
    s.histogram('h2');
    s.mergeHistograms();
    const doc = JSON.parse(renderJson(selectStats(s.snapshot(), { usedOnly: true }), 'cumulative')) as {
      stats: [unknown, { histograms: { name: string; buckets: unknown[] }[] }];
    };
    assert.deepEqual(doc.stats[0], { name: 'c1', value: 10 });
    assert.deepEqual(
      doc.stats[1].histograms.map((h) => h.name),
      ['h1'],
    );
    assert.deepEqual(doc.stats[1].histograms[0]?.buckets[8], { upper_bound: 500, interval: 1, cumulative: 1 });
  });
  test('no histograms entry when no histogram is selected', () => {
    const s = new StatsStore();
    s.inc(s.counter('c1'), 10);
    s.histogram('h1');
    assert.equal(renderJson(selectStats(s.snapshot(), { usedOnly: true })), '{"stats":[{"name":"c1","value":10}]}');
  });
});

describe('/stats/prometheus histograms', () => {
  test('_bucket{…,le=} from the cumulative values, +Inf, _sum in %.32g and _count, after counters and gauges', () => {
    const s = new StatsStore();
    s.set(s.gauge('server.live'), 1);
    const c = new StatScope(s, 'cluster.outbound|80||a.ns.svc.cluster.local;.');
    const t = c.histogram('upstream_cx_connect_ms');
    s.record(t, 5);
    s.record(t, 0);
    s.record(t, 1200);
    s.histogram('server.initialization_time_ms');
    s.mergeHistograms();
    const tag = 'cluster_name="outbound|80||a.ns.svc.cluster.local"';
    const expected = [
      '# TYPE envoy_server_live gauge',
      'envoy_server_live{} 1',
      '# TYPE envoy_cluster_upstream_cx_connect_ms histogram',
      ...[
        ['0.5', 1],
        ['1', 1],
        ['5', 1],
        ['10', 2],
        ['25', 2],
        ['50', 2],
        ['100', 2],
        ['250', 2],
        ['500', 2],
        ['1000', 2],
        ['2500', 3],
        ['5000', 3],
        ['10000', 3],
        ['30000', 3],
        ['60000', 3],
        ['300000', 3],
        ['600000', 3],
        ['1800000', 3],
        ['3600000', 3],
      ].map(([le, n]) => `envoy_cluster_upstream_cx_connect_ms_bucket{${tag},le="${le}"} ${n}`),
      `envoy_cluster_upstream_cx_connect_ms_bucket{${tag},le="+Inf"} 3`,
      // Bin midpoints 0 + 5.05 + 1250, printed with 32 significant digits as Envoy's {:.32g} does.
      `envoy_cluster_upstream_cx_connect_ms_sum{${tag}} 1255.0499999999999545252649113536`,
      `envoy_cluster_upstream_cx_connect_ms_count{${tag}} 3`,
      '# TYPE envoy_server_initialization_time_ms histogram',
      ...[
        '0.5',
        '1',
        '5',
        '10',
        '25',
        '50',
        '100',
        '250',
        '500',
        '1000',
        '2500',
        '5000',
        '10000',
        '30000',
        '60000',
        '300000',
        '600000',
        '1800000',
        '3600000',
      ].map((le) => `envoy_server_initialization_time_ms_bucket{le="${le}"} 0`),
      'envoy_server_initialization_time_ms_bucket{le="+Inf"} 0',
      'envoy_server_initialization_time_ms_sum{} 0',
      'envoy_server_initialization_time_ms_count{} 0',
      '',
    ];
    assert.deepEqual(lines(renderPrometheus(s.snapshot())), expected);
  });
});

describe('/stats/prometheus?histogram_buckets=', () => {
  test('summary: quantiles of the last interval (nan when empty), _sum and _count, as a Prometheus summary', () => {
    const s = new StatsStore();
    const h = s.histogram('cluster.c.upstream_rq_time');
    s.record(h, 200);
    s.mergeHistograms();
    const quantiles = ['0', '0.25', '0.5', '0.75', '0.9', '0.95', '0.99', '0.995', '0.999', '1'];
    const values = [
      '200',
      '202.5',
      '205',
      '207.5',
      '209',
      '209.5',
      '209.9000000000000056843418860808',
      '209.9499999999999886313162278384',
      '209.99000000000000909494701772928',
      '210',
    ];
    assert.deepEqual(lines(renderPrometheus(s.snapshot(), 'summary')), [
      '# TYPE envoy_cluster_upstream_rq_time summary',
      ...quantiles.map((q, i) => `envoy_cluster_upstream_rq_time{cluster_name="c",quantile="${q}"} ${values[i]}`),
      'envoy_cluster_upstream_rq_time_sum{cluster_name="c"} 205',
      'envoy_cluster_upstream_rq_time_count{cluster_name="c"} 1',
      '',
    ]);
    s.mergeHistograms();
    assert.match(renderPrometheus(s.snapshot(), 'summary'), /^envoy_cluster_upstream_rq_time\{cluster_name="c",quantile="0"\} nan$/m);
  });
  test('disjoint is refused, as Envoy refuses it for Prometheus; an unknown mode is the usage error', () => {
    assert.equal(prometheusQuery(new URLSearchParams('histogram_buckets=disjoint')), 'unsupported prometheus histogram bucket mode');
    assert.equal(prometheusQuery(new URLSearchParams('histogram_buckets=x')), 'usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary)\n');
    const q = prometheusQuery(new URLSearchParams('usedonly'));
    assert.ok(typeof q !== 'string' && q.histogramBuckets === undefined);
  });
});

describe('histograms across worker threads', () => {
  test("each flush merges every thread's values once; the workers' shares of /stats carry none", () => {
    const main = new StatsStore();
    const workers = [new StatsStore(), new StatsStore()];
    const name = 'http.outbound_0.0.0.0_8080;.downstream_rq_time';
    main.histogram(name);
    const idx = workers.map((w) => w.histogram(name));
    workers[0]?.record(idx[0] ?? -1, 200);
    workers[1]?.record(idx[1] ?? -1, 100);
    // A worker's value for a histogram the main thread does not hold (a removed listener) is dropped.
    workers[1]?.record(workers[1].histogram('http.gone.downstream_rq_time'), 5);
    main.mergeHistograms(workers.map((w) => w.takeHistogramDeltas()));
    assert.deepEqual(
      workers.map((w) => w.takeHistogramDeltas()),
      [[], []],
    );
    const merged: StatSample[] = mergeSamples(
      main.snapshot(),
      workers.map((w) => workerShare(w.snapshot())),
    );
    assert.deepEqual(
      merged.map((x) => x.name),
      [name],
    );
    assert.equal(merged[0]?.histogram?.cumulative.count, 2);
    assert.match(
      renderText(merged),
      /^http\.outbound_0\.0\.0\.0_8080;\.downstream_rq_time: P0\(100,100\) P25\(105,105\) P50\(110,110\) P75\(205,205\) .* P100\(210,210\)\n$/,
    );
    main.mergeHistograms([]);
    assert.match(renderText(main.snapshot()), /P0\(nan,100\)/);
  });
});
