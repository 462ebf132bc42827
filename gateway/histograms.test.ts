// Envoy's histograms through real requests: the HCM's downstream_rq_time and downstream_cx_length_ms, the
// listener's downstream_cx_length_ms, the cluster's upstream_rq_time (and external.), upstream_cx_connect_ms,
// and the ones Istio's default stats inclusion keeps (server.initialization_time_ms, the CDS and LDS
// update_duration), merged from the worker threads at each stats flush and shown by /stats, its JSON and
// Prometheus forms, and the 15090 metrics port.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest } from '../e2e/lib/http.ts';
import { startProxy } from './proxy.ts';
import { testProxyOptions } from './test/test-proxy.ts';
import { TestAdsServer } from './test/ads-server.ts';
import { HTTPBIN, eventually, routeOneHost, startEchoBackend } from './test/fixtures.ts';
import { RawConnection, freePort } from './test/raw-client.ts';

const HOST = 'httpbin.example.com';
const SLOW_MS = 60;

/** The cumulative P0 and P100 of a `/stats` quantile summary line, or undefined when it has none. */
function cumulativeRange(text: string, name: string): [number, number] | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}: `));
  const p0 = /P0\([^,]+,([^)]+)\)/.exec(line ?? '');
  const p100 = /P100\([^,]+,([^)]+)\)/.exec(line ?? '');
  return p0 && p100 ? [Number(p0[1]), Number(p100[1])] : undefined;
}

describe('histograms', () => {
  for (const concurrency of [1, 2]) {
    test(`with ${concurrency} worker(s): request, connection and config-update times reach /stats and Prometheus once flushed`, async () => {
      const ads = new TestAdsServer();
      await ads.start();
      const be = await startEchoBackend('127.0.0.2', 'be', (req) => (req.url === '/slow' ? { delayMs: SLOW_MS } : undefined));
      const port = await freePort();
      routeOneHost(ads, { port, host: HOST, endpoints: [{ ip: '127.0.0.2', port: be.port }] });
      const proxy = await startProxy(testProxyOptions(ads, { concurrency, statsFlushIntervalMs: 100 }));
      const admin = async (path: string): Promise<string> =>
        (await rawRequest('127.0.0.1', proxy.ports.admin, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)).body.toString();
      const conns: RawConnection[] = [];
      try {
        await proxy.ready;
        for (let i = 0; i < 2; i++) conns.push(await RawConnection.open('127.0.0.1', port));
        for (const c of conns) {
          assert.equal((await c.request(`GET /fast HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)).status, 200);
          assert.equal((await c.request(`GET /slow HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)).status, 200);
          c.close();
          assert.ok(await c.waitClosed(1000));
        }
        const hcm = `http.outbound_0.0.0.0_${port};.downstream_rq_time`;
        const cluster = `cluster.${HTTPBIN};.`;
        const metrics = async (): Promise<string> =>
          (await rawRequest('127.0.0.1', proxy.ports.metrics, 'GET /stats/prometheus HTTP/1.1\r\nHost: x\r\n\r\n')).body.toString();
        const tag = `cluster_name="${HTTPBIN}"`;
        // A flush under way when a request ends leaves its values to the next one: wait for all four.
        const prom = await eventually('the four requests merged by a flush', async () => {
          const m = await metrics();
          return m.includes(`envoy_cluster_upstream_rq_time_count{${tag}} 4\n`) &&
            m.includes(`envoy_http_downstream_rq_time_count{http_conn_manager_prefix="outbound_0.0.0.0_${port}"} 4\n`)
            ? m
            : undefined;
        });
        const text = await admin('/stats');
        // Four requests, two of them held SLOW_MS by the backend.
        const rq = cumulativeRange(text, hcm);
        assert.ok(rq && rq[0] >= 0 && rq[0] < SLOW_MS && rq[1] >= SLOW_MS && rq[1] < 5000, `downstream_rq_time range ${String(rq)}`);
        for (const h of ['upstream_rq_time', 'external.upstream_rq_time']) {
          const r = cumulativeRange(text, cluster + h);
          assert.ok(r && r[1] >= SLOW_MS && r[1] < 5000, `${h} range ${String(r)}`);
        }
        const connect = cumulativeRange(text, `${cluster}upstream_cx_connect_ms`);
        assert.ok(connect && connect[1] < 1000, `upstream_cx_connect_ms range ${String(connect)}`);
        // The upstream connections are kept alive: no length yet, as in Envoy.
        assert.match(text, new RegExp(`^${cluster.replace(/[|.;]/g, '\\$&')}upstream_cx_length_ms: No recorded values$`, 'm'));
        for (const name of ['server.initialization_time_ms', 'cluster_manager.cds.update_duration', 'listener_manager.lds.update_duration']) {
          assert.ok(cumulativeRange(text, name), `${name} has values`);
        }
        // The closed downstream connections: the listener's and the HCM's length.
        await eventually('connection lengths after the connections closed', async () => {
          const t = await admin('/stats?usedonly&filter=downstream_cx_length_ms');
          return cumulativeRange(t, `listener.0.0.0.0_${port}.downstream_cx_length_ms`) &&
            cumulativeRange(t, `http.outbound_0.0.0.0_${port};.downstream_cx_length_ms`)
            ? t
            : undefined;
        });
        // Counters and gauges first, histograms last, each part sorted.
        const names = text
          .trimEnd()
          .split('\n')
          .map((l) => l.slice(0, l.indexOf(': ')));
        const firstHistogram = names.indexOf('cluster_manager.cds.update_duration');
        assert.ok(firstHistogram > 0 && names.includes('server.uptime') && names.indexOf('server.uptime') < firstHistogram);

        const json = JSON.parse(await admin('/stats?format=json&filter=downstream_rq_time')) as {
          stats: {
            histograms?: {
              supported_quantiles: number[];
              computed_quantiles: { name: string; values: { cumulative: number | null; interval: number | null }[] }[];
            };
          }[];
        };
        const hs = json.stats.at(-1)?.histograms;
        assert.deepEqual(hs?.supported_quantiles, [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]);
        assert.equal(hs.computed_quantiles[0]?.name, hcm);
        assert.ok((hs.computed_quantiles[0]?.values[9]?.cumulative ?? 0) >= SLOW_MS);

        // 15090: Prometheus histograms, counts from the cumulative values.
        assert.match(prom, /^# TYPE envoy_cluster_upstream_rq_time histogram$/m);
        assert.ok(prom.includes(`envoy_cluster_upstream_rq_time_bucket{${tag},le="+Inf"} 4\n`), 'four upstream requests under +Inf');
        assert.ok(prom.includes(`envoy_cluster_upstream_rq_time_bucket{${tag},le="0.5"} `));
        assert.match(prom, /^envoy_server_initialization_time_ms_count\{\} 1$/m);
        const slowBucket = new RegExp(`^envoy_cluster_upstream_rq_time_bucket\\{${tag.replace(/[|.]/g, '\\$&')},le="25"\\} (\\d+)$`, 'm').exec(prom);
        assert.ok(slowBucket && Number(slowBucket[1]) <= 2, 'the slow requests are above le="25"');
      } finally {
        for (const c of conns) c.close();
        await proxy.close();
        await ads.stop();
        be.server.close();
        be.server.closeAllConnections();
      }
    });
  }
});
