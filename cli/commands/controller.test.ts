import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeMetrics } from './controller.ts';

describe('merged /stats/prometheus', () => {
  test("the proxy's text comes first, then the controller's families", () => {
    const proxy = '# TYPE envoy_cluster_upstream_rq_total counter\nenvoy_cluster_upstream_rq_total{cluster_name="a"} 3';
    const ours = '# HELP meshgate_x x\n# TYPE meshgate_x counter\nmeshgate_x 1\n';
    assert.equal(mergeMetrics(proxy, ours), `${proxy}\n${ours}`);
  });

  test("a family both expose is kept once (the proxy's), so the exposition stays valid", () => {
    const proxy = '# HELP process_cpu_seconds_total cpu\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 5\n';
    const ours =
      '# HELP process_cpu_seconds_total cpu\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\n\n# HELP nodejs_heap_size_total_bytes heap\n# TYPE nodejs_heap_size_total_bytes gauge\nnodejs_heap_size_total_bytes 9\n';
    const merged = mergeMetrics(proxy, ours);
    assert.equal(merged.match(/# TYPE process_cpu_seconds_total/g)?.length, 1);
    assert.match(merged, /^process_cpu_seconds_total 5$/m);
    assert.doesNotMatch(merged, /^process_cpu_seconds_total 1$/m);
    assert.match(merged, /^nodejs_heap_size_total_bytes 9$/m);
  });

  test('no proxy text (scrape failed): the controller families alone', () => {
    const ours = '# HELP meshgate_x x\n# TYPE meshgate_x counter\nmeshgate_x 1\n';
    assert.equal(mergeMetrics('', ours), ours);
  });
});
