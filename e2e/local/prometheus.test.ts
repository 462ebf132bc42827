// A real Prometheus (e2e/prometheus/build.sh) scraping `meshgate local`'s Prometheus listener (--metrics-port,
// Istio's 15090 `/stats/prometheus`, what Istio's envoy-stats job scrapes), after a known request mix: 200s
// from a backend, 404 NR (no route for the host) and 503 UH (a Service without endpoints). Every assertion is a
// PromQL query over Prometheus' HTTP API with the exact value the mix implies, so the exposition is proved to
// parse in Prometheus itself and to carry the series and labels (Istio's bootstrap tag extraction) that
// dashboards select on. Each row of EXPECTED is one query and the increase the mix makes to it: a histogram's
// `_count` or `_bucket{le=...}`, or `istio_requests_total{response_code="404",response_flags="NR",...}`, is one
// more row of the same kind once the gateway exports it.
// The Envoy cluster and HCM counters are outside Istio's stats inclusion list: the gateway under test asks for them
// with proxyStatsMatcher (--proxy-config, the pod annotation's JSON), as an Istio user must; a second gateway with
// Istio's defaults proves they are absent there while istio_* and the server and manager stats are scraped.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, freePort } from '../lib/process.ts';
import { get } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';
import { formatSamples, startPrometheus, staticJob, type Prometheus } from '../lib/prometheus.ts';

const GW = '127.0.0.1';
const JOB = 'meshgate-local';
const DEFAULT_JOB = 'meshgate-local-istio-defaults';
// refused: a service whose one endpoint refuses connections (503 after Istio's default retries, flags UF,URX).
const MIX = { ok: 5, noRoute: 2, noHealthyUpstream: 3, refused: 2 };
const ALL = MIX.ok + MIX.noRoute + MIX.noHealthyUpstream + MIX.refused;
const PROXY_STATS_MATCHER = '{"proxyStatsMatcher":{"inclusionPrefixes":["cluster.outbound","http."]}}';

describe('Prometheus scraping meshgate local', () => {
  let gw: Gateway;
  /** The same config with Istio's default inclusion list (no proxyStatsMatcher). */
  let plain: Gateway;
  let backend: Backend;
  let prom: Prometheus;
  let bport: number;
  let web: string;
  let down: string;
  let hcm: string;

  before(async () => {
    bport = await freePort();
    backend = await startBackend('127.0.30.1', bport, 'web');
    gw = await startGateway({ args: ['--proxy-config', PROXY_STATS_MATCHER] });
    // A port nothing listens on: connections to it are refused.
    const closedPort = await freePort();
    gw.write('22-refused.yaml', serviceYaml('refused', closedPort, [{ ip: '127.0.30.2' }]));
    gw.write('31-vs-refused.yaml', virtualServiceYaml('refused', 'refused.prom.example.com', 'prom-gateway', 'refused'));
    plain = await startGateway();
    for (const g of [gw, plain]) {
      g.write('10-gateway.yaml', gatewayYaml('prom-gateway', ['web.prom.example.com', 'down.prom.example.com', 'refused.prom.example.com']));
      g.write('20-web.yaml', serviceYaml('web', bport, [{ ip: '127.0.30.1' }]));
      g.write('21-down.yaml', serviceYaml('down', bport, []));
      g.write(
        '30-vs.yaml',
        `${virtualServiceYaml('web', 'web.prom.example.com', 'prom-gateway', 'web')}---\n${virtualServiceYaml('down', 'down.prom.example.com', 'prom-gateway', 'down')}`,
      );
    }
    // Istio's cluster names (outbound|port||fqdn) and its gateway HCM stat prefix (outbound_0.0.0.0_<port>, `;`
    // delimited, which Prometheus' name sanitising turns into the second underscore).
    web = `outbound|${bport}||web.default.svc.cluster.local`;
    down = `outbound|${bport}||down.default.svc.cluster.local`;
    hcm = `http_conn_manager_prefix="outbound_0.0.0.0_${gw.port}"`;
    prom = await startPrometheus({ scrapeConfigs: [staticJob(JOB, [`127.0.0.1:${gw.metrics}`]), staticJob(DEFAULT_JOB, [`127.0.0.1:${plain.metrics}`])] });

    for (const g of [gw, plain]) {
      await eventually(
        'the routes to apply',
        async () => ((await get(GW, g.port, '/warmup', 'down.prom.example.com')).status === 503 ? true : undefined),
        15_000,
        100,
      );
      await eventually(
        'the web route to apply',
        async () => ((await get(GW, g.port, '/warmup', 'web.prom.example.com')).status === 200 ? true : undefined),
        15_000,
        100,
      );
    }
    await eventually(
      'the refused route to apply',
      async () => ((await get(GW, gw.port, '/warmup', 'refused.prom.example.com')).status === 503 ? true : undefined),
      15_000,
      100,
    );
  });

  after(async () => {
    await prom?.stop();
    await gw?.stop();
    await plain?.stop();
    await backend?.close();
  });

  // The counters before the mix (the warm-up requests, and any retry of them while config applied), read
  // from the same Prometheus: each expected value below is an increase over these.
  const baseline = new Map<string, number>();

  interface Row {
    name: string;
    query: () => string;
    /** The increase the request mix makes. */
    want: number;
  }
  const EXPECTED: Row[] = [
    {
      name: 'envoy_cluster_upstream_rq by response_code: the 200s on the backend cluster',
      query: () => `envoy_cluster_upstream_rq{cluster_name="${web}",response_code="200"}`,
      want: MIX.ok,
    },
    {
      name: 'envoy_cluster_upstream_rq by response_code_class: 2xx on the backend cluster',
      query: () => `envoy_cluster_upstream_rq{cluster_name="${web}",response_code_class="2xx"}`,
      want: MIX.ok,
    },
    {
      name: 'envoy_cluster_upstream_rq_total: requests sent to a backend host',
      query: () => `envoy_cluster_upstream_rq_total{cluster_name="${web}"}`,
      want: MIX.ok,
    },
    {
      name: "envoy_cluster_upstream_rq 503 on the cluster without endpoints (UH is charged to the cluster, as Envoy's router does)",
      query: () => `envoy_cluster_upstream_rq{cluster_name="${down}",response_code="503"}`,
      want: MIX.noHealthyUpstream,
    },
    {
      name: 'envoy_cluster_upstream_rq 5xx class on the cluster without endpoints',
      query: () => `envoy_cluster_upstream_rq{cluster_name="${down}",response_code_class="5xx"}`,
      want: MIX.noHealthyUpstream,
    },
    {
      name: 'envoy_cluster_upstream_cx_none_healthy: the UH responses found no host',
      query: () => `envoy_cluster_upstream_cx_none_healthy{cluster_name="${down}"}`,
      want: MIX.noHealthyUpstream,
    },
    {
      name: 'envoy_cluster_upstream_rq_total on the cluster without endpoints: nothing was sent',
      query: () => `sum(envoy_cluster_upstream_rq_total{cluster_name="${down}"}) or vector(0)`,
      want: 0,
    },
    {
      name: 'downstream 2xx at the gateway listener',
      query: () => `envoy_http_downstream_rq{response_code_class="2xx",${hcm}}`,
      want: MIX.ok,
    },
    {
      name: 'downstream 4xx at the gateway listener: the NR 404s',
      query: () => `envoy_http_downstream_rq{response_code_class="4xx",${hcm}}`,
      want: MIX.noRoute,
    },
    {
      name: 'downstream 5xx at the gateway listener: the UH and UF 503s',
      query: () => `envoy_http_downstream_rq{response_code_class="5xx",${hcm}}`,
      want: MIX.noHealthyUpstream + MIX.refused,
    },
    {
      name: 'downstream_rq_total at the gateway listener: every request of the mix',
      query: () => `envoy_http_downstream_rq_total{${hcm}}`,
      want: ALL,
    },
    // Istio's standard metrics, reported as a gateway reports them (reporter="source", the gateway as source).
    {
      name: 'istio_requests_total: the 200s to the web service, by destination service and name',
      query: () =>
        `istio_requests_total{job="${JOB}",reporter="source",source_workload="istio-ingressgateway",source_workload_namespace="istio-system",` +
        `source_canonical_service="istio-ingressgateway",destination_service="web.default.svc.cluster.local",destination_service_name="web",` +
        `request_protocol="http",response_code="200",response_flags="-",connection_security_policy="unknown"}`,
      want: MIX.ok,
    },
    {
      name: 'istio_requests_total: the 404 NR, every destination label unknown',
      query: () =>
        `istio_requests_total{job="${JOB}",reporter="source",destination_service="unknown",destination_service_name="unknown",destination_workload="unknown",` +
        `destination_canonical_revision="latest",response_code="404",response_flags="NR"}`,
      want: MIX.noRoute,
    },
    {
      name: 'istio_requests_total: the 503 UH, the service known and no workload',
      query: () =>
        `istio_requests_total{job="${JOB}",reporter="source",destination_service="down.default.svc.cluster.local",destination_service_name="down",` +
        `destination_workload="unknown",response_code="503",response_flags="UH"}`,
      want: MIX.noHealthyUpstream,
    },
    {
      name: 'istio_requests_total: the 503s of a refused connection after the retries, flags UF,URX',
      query: () =>
        `istio_requests_total{job="${JOB}",reporter="source",destination_service="refused.default.svc.cluster.local",destination_service_name="refused",` +
        `response_code="503",response_flags="UF,URX"}`,
      want: MIX.refused,
    },
    {
      name: "Istio's gateway dashboard: requests by response code from the gateway workload",
      query: () => `sum(istio_requests_total{job="${JOB}",reporter="source",source_workload="istio-ingressgateway",response_code=~"200|404|503"})`,
      want: ALL,
    },
    {
      name: 'istio_request_duration_milliseconds: one observation per request (the latency panels read its buckets)',
      query: () => `sum(istio_request_duration_milliseconds_count{job="${JOB}",reporter="source",source_workload="istio-ingressgateway"})`,
      want: ALL,
    },
    {
      name: 'istio_request_duration_milliseconds: every request under the +Inf bucket',
      query: () => `sum(istio_request_duration_milliseconds_bucket{job="${JOB}",reporter="source",le="+Inf"})`,
      want: ALL,
    },
    {
      name: 'istio_request_bytes and istio_response_bytes: one observation each per request',
      query: () => `sum(istio_request_bytes_count{job="${JOB}",reporter="source"}) + sum(istio_response_bytes_count{job="${JOB}",reporter="source"})`,
      want: 2 * ALL,
    },
    {
      name: 'a dashboard-style aggregation: sum by response_code over every outbound cluster',
      query: () => `sum(envoy_cluster_upstream_rq{cluster_name=~"outbound\\\\|${bport}\\\\|\\\\|.*",response_code=~"200|503"})`,
      want: MIX.ok + MIX.noHealthyUpstream,
    },
  ];

  test('the scrape target is up and its exposition parses in Prometheus', async () => {
    await prom.scrapedSince(JOB, Date.now());
    const up = await prom.query(`up{job="${JOB}"}`);
    assert.equal(formatSamples(up), `up{instance="127.0.0.1:${gw.metrics}",job="${JOB}"} 1`);
    assert.ok((await prom.value(`scrape_samples_scraped{job="${JOB}"}`)) > 0, 'scrape_samples_scraped');
    // Counters are typed as counters: Prometheus' metadata API reports the TYPE lines it parsed.
    const res = await fetch(`http://127.0.0.1:${prom.port}/api/v1/metadata?metric=envoy_cluster_upstream_rq_total`);
    const meta = (await res.json()) as { data: Record<string, { type: string }[]> };
    assert.deepEqual(
      meta.data.envoy_cluster_upstream_rq_total?.map((m) => m.type),
      ['counter'],
    );
    // istio_build, once per proxy, without the envoy_ prefix (Istio's custom stat namespace).
    assert.equal(await prom.value(`count(istio_build{job="${JOB}",component="proxy"})`), 1);
  });

  test('after a known request mix (200, 404 NR, 503 UH, 503 UF,URX), PromQL reads Envoy counters and Istio metrics with the exact values', async () => {
    // The baseline after a stats flush: histograms show the warm-up requests only once merged (5 s), and one
    // merged later would count as part of the mix.
    await new Promise((r) => setTimeout(r, 5500));
    await prom.scrapedSince(JOB, Date.now());
    for (const row of EXPECTED) baseline.set(row.name, await prom.value(row.query()));

    for (let i = 0; i < MIX.ok; i++) assert.equal((await get(GW, gw.port, `/ok/${i}`, 'web.prom.example.com')).status, 200);
    for (let i = 0; i < MIX.noRoute; i++) {
      const r = await get(GW, gw.port, `/nr/${i}`, 'nowhere.prom.example.com');
      assert.equal(r.status, 404);
    }
    for (let i = 0; i < MIX.noHealthyUpstream; i++) {
      const r = await get(GW, gw.port, `/uh/${i}`, 'down.prom.example.com');
      assert.equal(r.status, 503);
      assert.equal(r.body.toString(), 'no healthy upstream');
    }
    for (let i = 0; i < MIX.refused; i++) assert.equal((await get(GW, gw.port, `/uf/${i}`, 'refused.prom.example.com')).status, 503);
    // Histograms show what the last stats flush merged (Envoy's stats_flush_interval, 5 s).
    await new Promise((r) => setTimeout(r, 5500));
    await prom.scrapedSince(JOB, Date.now());

    const got: string[] = [];
    const want: string[] = [];
    for (const row of EXPECTED) {
      const q = row.query();
      const v = (await prom.value(q)) - (baseline.get(row.name) ?? 0);
      got.push(`${row.name}: ${v}`);
      want.push(`${row.name}: ${row.want}`);
    }
    const all = await prom.query(
      `{__name__=~"envoy_cluster_upstream_rq.*|envoy_http_downstream_rq.*|istio_requests_total",__name__!~".*_bucket",job="${JOB}"} != 0`,
    );
    assert.deepEqual(got, want, `series scraped:\n${formatSamples(all)}`);
    // The latency panels of Istio's dashboards: p50/p90/p99 from the duration histogram's buckets. Every request of the
    // mix took well under a second here, so each quantile is a finite value inside the first buckets.
    for (const q of [0.5, 0.9, 0.99]) {
      const v = await prom.value(
        `histogram_quantile(${q}, sum by (le) (istio_request_duration_milliseconds_bucket{job="${JOB}",reporter="source",source_workload="istio-ingressgateway"}))`,
      );
      assert.ok(Number.isFinite(v) && v > 0 && v <= 1000, `p${q * 100} = ${v} ms`);
    }
  });

  test("with Istio's default inclusion list, cluster and HCM counters are not exported while istio_*, server and manager stats are", async () => {
    for (let i = 0; i < MIX.ok; i++) assert.equal((await get(GW, plain.port, `/ok/${i}`, 'web.prom.example.com')).status, 200);
    assert.equal((await get(GW, plain.port, '/nr', 'nowhere.prom.example.com')).status, 404);
    await prom.scrapedSince(DEFAULT_JOB, Date.now());

    // Of the envoy_cluster_* series only the xDS cluster's (prefix cluster.xds-grpc) and the cluster manager's remain.
    const envoy = await prom.query(
      `{job="${DEFAULT_JOB}",__name__=~"envoy_(cluster|http|listener)_.*",__name__!~"envoy_(cluster|listener)_manager_.*|envoy_http_.*rbac_.*",cluster_name!="xds-grpc"}`,
    );
    assert.equal(formatSamples(envoy), '', 'no envoy_cluster_*, envoy_http_*, envoy_listener_* series');
    assert.ok((await prom.value(`count({job="${DEFAULT_JOB}",__name__=~"envoy_cluster_.*",cluster_name="xds-grpc"})`)) > 0, 'cluster.xds-grpc stats');
    // The admin API still has them (every stat, for debugging).
    assert.ok((await plain.stat(`cluster.${web};.upstream_rq_200`)) >= MIX.ok);
    assert.ok((await plain.stat(`cluster.${web};.upstream_rq_total`)) >= MIX.ok);

    assert.ok(
      (await prom.value(`sum(istio_requests_total{job="${DEFAULT_JOB}",reporter="source",destination_service_name="web",response_code="200"})`)) >= MIX.ok,
      'istio_requests_total',
    );
    assert.equal(await prom.value(`count(istio_build{job="${DEFAULT_JOB}",component="proxy"})`), 1);
    assert.equal(await prom.value(`envoy_server_live{job="${DEFAULT_JOB}"}`), 1);
    assert.ok((await prom.value(`envoy_cluster_manager_active_clusters{job="${DEFAULT_JOB}"}`)) >= 2, 'cluster_manager.active_clusters');
    assert.ok((await prom.value(`envoy_listener_manager_total_listeners_active{job="${DEFAULT_JOB}"}`)) >= 1, 'listener_manager.total_listeners_active');
  });

  test("the bootstrap in /config_dump carries the inclusion list in force, as Istio's bootstrap does", async () => {
    const patterns = async (g: Gateway): Promise<unknown> =>
      (
        JSON.parse(await g.adminGet('/config_dump')) as {
          configs: { bootstrap?: { stats_config?: { stats_matcher?: { inclusion_list?: { patterns?: unknown } } } } }[];
        }
      ).configs[0]?.bootstrap?.stats_config?.stats_matcher?.inclusion_list?.patterns;
    const required = [
      { prefix: 'cluster_manager' },
      { prefix: 'listener_manager' },
      { prefix: 'server' },
      { prefix: 'cluster.xds-grpc' },
      { prefix: 'wasm' },
      { suffix: 'rbac.allowed' },
      { suffix: 'rbac.denied' },
      { suffix: 'shadow_allowed' },
      { suffix: 'shadow_denied' },
      { safe_regex: { regex: 'vhost\\..*\\.route\\..*' } },
      { prefix: 'component' },
      { prefix: 'istio' },
    ];
    assert.deepEqual(await patterns(plain), [{ prefix: 'reporter=' }, ...required]);
    assert.deepEqual(await patterns(gw), [{ prefix: 'reporter=' }, { prefix: 'cluster.outbound' }, { prefix: 'http.' }, ...required]);
  });

  test('proxyStatsMatcher adds only what it names: cluster.outbound and http. series, no envoy_listener_*', async () => {
    await prom.scrapedSince(JOB, Date.now());
    assert.ok((await prom.value(`count({job="${JOB}",__name__=~"envoy_cluster_upstream_.*",cluster_name="${web}"})`)) > 0);
    assert.ok((await prom.value(`count({job="${JOB}",__name__=~"envoy_http_downstream_.*"})`)) > 0);
    assert.equal(formatSamples(await prom.query(`{job="${JOB}",__name__=~"envoy_listener_(downstream|no_filter).*"}`)), '');
    assert.equal(await prom.value(`envoy_server_live{job="${JOB}"}`), 1);
  });
});
