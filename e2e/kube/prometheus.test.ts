// A real Prometheus scraping the gateway pod as Istio's Prometheus addon does: pods discovered through the real
// kube-apiserver (kubernetes_sd, role pod) and kept by the chart's pod annotations prometheus.io/scrape, port
// (15020) and path (/stats/prometheus), so the scrape reaches the controller's merged endpoint on the pod's
// address, which carries the proxy's Envoy stats and the controller's own metrics. After a known request mix
// (200s and an upstream 503 from httpbin, a 404 NR for an unknown host), PromQL reads the exact counters.
// The first pod has Istio's default stats inclusion list: no cluster.<name>.* nor http.<prefix>.* stats. The pod is
// then restarted with proxyStatsMatcher in its proxy.istio.io/config annotation, as an Istio user asks for them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { eventually } from '../lib/process.ts';
import { formatSamples, kubernetesPodsJob, startPrometheus, type Prometheus } from '../lib/prometheus.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { HOST, RELEASES, gateway, setupSuite, startIngressPod, virtualService, type Suite } from './suite.ts';

const PORT = 8080;
const JOB = 'kubernetes-pods';
const MIX = { ok: 4, upstream503: 2, noRoute: 3 };
const PROXY_STATS_MATCHER = '{"proxyStatsMatcher":{"inclusionPrefixes":["cluster.outbound","http."]}}';

describe('kubernetes: Prometheus discovers the gateway pod by its annotations and scrapes the merged metrics on 15020', () => {
  let s: Suite;
  let gw: GatewayPod;
  let prom: Prometheus;
  const get = (path: string, host = HOST): Promise<RawResponse> => rawRequest('127.0.0.1', PORT, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);

  before(
    async () => {
      s = await setupSuite();
      const pod = await s.backend('httpbin-v1', s.ns.app, { app: 'httpbin', version: 'v1' });
      await s.service('httpbin', s.ns.app, [pod], { app: 'httpbin' });
      await s.kube.apply(gateway('httpbin-gateway', s.ns.app, { istio: 'ingressgateway' }, [HOST]));
      await s.kube.apply(virtualService('httpbin', s.ns.app, { hosts: [HOST], gateways: ['httpbin-gateway'], prefixes: ['/'], host: 'httpbin' }));
      gw = await startIngressPod(s);
      await eventually('the route', async () => ((await get('/status/200')).status === 200 ? true : undefined), 30_000, 200);
      // Prometheus reads the pods with the admin kubeconfig (in a cluster: its own ServiceAccount with list/watch on pods).
      prom = await startPrometheus({ scrapeConfigs: [kubernetesPodsJob(JOB, s.cluster.kubeconfig, [s.ns.gw])] });
    },
    { timeout: 10 * 60_000 },
  );

  after(
    async () => {
      await prom?.stop();
      await gw?.stop();
      await s?.cleanup();
    },
    { timeout: 120_000 },
  );

  test('the one target is the gateway pod at podIP:15020 /stats/prometheus, labelled with its pod labels, namespace and name', async () => {
    await prom.scrapedSince(JOB, Date.now(), 60_000);
    const up = await prom.query(`up{job="${JOB}"}`);
    assert.equal(up.length, 1, formatSamples(up));
    const m = up[0]?.metric ?? {};
    assert.equal(m.instance, `${s.gatewayPodIP}:15020`);
    assert.equal(m.namespace, s.ns.gw);
    assert.equal(m.pod, gw.pod.metadata.name);
    assert.equal(m.app, 'istio-ingressgateway');
    assert.equal(m.istio, 'ingressgateway');
    assert.equal(up[0]?.value, 1);
    // The merged endpoint: the controller's own metrics beside the proxy's.
    assert.equal(await prom.value(`meshgate_controller_proxy_scrape_failures_total{job="${JOB}"}`), 0);
    assert.ok((await prom.value(`count({job="${JOB}",__name__=~"envoy_server_.*"})`)) > 0, 'envoy_server_* series from the proxy');
  });

  test("with Istio's default inclusion list the merged endpoint has no cluster or HCM counters, and has istio_*, server and manager stats", async () => {
    for (let i = 0; i < MIX.ok; i++) assert.equal((await get(`/status/200?d=${i}`)).status, 200);
    await prom.scrapedSince(JOB, Date.now());
    // Of the envoy_cluster_* series only the xDS cluster's (prefix cluster.xds-grpc) and the cluster manager's remain.
    const envoy = await prom.query(
      `{job="${JOB}",__name__=~"envoy_(cluster|http|listener)_.*",__name__!~"envoy_(cluster|listener)_manager_.*|envoy_http_.*rbac_.*",cluster_name!="xds-grpc"}`,
    );
    assert.equal(formatSamples(envoy), '', 'no envoy_cluster_*, envoy_http_*, envoy_listener_* series');
    // The admin API (127.0.0.1:15000) keeps every stat.
    const cluster = `outbound|8000||httpbin.${s.ns.app}.svc.cluster.local`;
    assert.match(
      await gw.adminGet(`/stats?filter=${encodeURIComponent('upstream_rq_200$')}`),
      new RegExp(`^cluster\\.${cluster.replace(/[|.]/g, '\\$&')};\\.upstream_rq_200: [1-9]`, 'm'),
    );
    assert.ok(
      (await prom.value(`sum(istio_requests_total{job="${JOB}",reporter="source",destination_service_name="httpbin",response_code="200"})`)) >= MIX.ok,
      'istio_requests_total',
    );
    assert.equal(await prom.value(`envoy_server_live{job="${JOB}"}`), 1);
    assert.ok((await prom.value(`envoy_cluster_manager_active_clusters{job="${JOB}"}`)) >= 1, 'cluster_manager.active_clusters');
    assert.ok((await prom.value(`envoy_listener_manager_total_listeners_active{job="${JOB}"}`)) >= 1, 'listener_manager.total_listeners_active');
  });

  test('after a known request mix (200, upstream 503, 404 NR), PromQL reads Envoy counters with the exact values', async () => {
    // The pod again, with proxyStatsMatcher in its proxy.istio.io/config annotation (what the chart's podAnnotations
    // render; read when the pod starts, as Istio's agent reads it).
    await gw.stop();
    await s.kube.mergePatch('Deployment', s.ns.gw, RELEASES.ingress.name, {
      spec: { template: { metadata: { annotations: { 'proxy.istio.io/config': PROXY_STATS_MATCHER } } } },
    });
    gw = await startIngressPod(s);
    await eventually('the route', async () => ((await get('/status/200')).status === 200 ? true : undefined), 30_000, 200);
    // Only the new pod is a target (the old one's series are then stale) and it was scraped.
    const pod = gw.pod.metadata.name;
    await eventually(
      'Prometheus to scrape the new pod alone',
      async () => {
        const up = await prom.query(`up{job="${JOB}"}`);
        return up.length === 1 && up[0]?.metric.pod === pod && up[0].value === 1 ? true : undefined;
      },
      60_000,
      500,
    );
    await prom.scrapedSince(JOB, Date.now());

    const cluster = `outbound|8000||httpbin.${s.ns.app}.svc.cluster.local`;
    const hcm = `http_conn_manager_prefix="outbound_0.0.0.0_${PORT}"`;
    const rows: { name: string; query: string; want: number }[] = [
      { name: 'upstream 200', query: `envoy_cluster_upstream_rq{cluster_name="${cluster}",response_code="200"}`, want: MIX.ok },
      { name: 'upstream 503', query: `envoy_cluster_upstream_rq{cluster_name="${cluster}",response_code="503"}`, want: MIX.upstream503 },
      { name: 'upstream_rq_total', query: `envoy_cluster_upstream_rq_total{cluster_name="${cluster}"}`, want: MIX.ok + MIX.upstream503 },
      { name: 'downstream 2xx', query: `envoy_http_downstream_rq{response_code_class="2xx",${hcm}}`, want: MIX.ok },
      { name: 'downstream 4xx', query: `envoy_http_downstream_rq{response_code_class="4xx",${hcm}}`, want: MIX.noRoute },
      { name: 'downstream 5xx', query: `envoy_http_downstream_rq{response_code_class="5xx",${hcm}}`, want: MIX.upstream503 },
      { name: 'downstream_rq_total', query: `envoy_http_downstream_rq_total{${hcm}}`, want: MIX.ok + MIX.upstream503 + MIX.noRoute },
      // Istio's standard metrics: the gateway (its Deployment, namespace and labels) as source, the destination from
      // the cluster's service and the endpoint's pod (a bare pod: its own name is the workload).
      ...[
        { code: '200', want: MIX.ok },
        { code: '503', want: MIX.upstream503 },
      ].map(({ code, want }) => ({
        name: `istio_requests_total ${code}`,
        query:
          `istio_requests_total{reporter="source",source_workload="${RELEASES.ingress.name}",source_workload_namespace="${s.ns.gw}",` +
          `source_app="istio-ingressgateway",source_canonical_service="istio-ingressgateway",source_cluster="Kubernetes",` +
          `destination_service="httpbin.${s.ns.app}.svc.cluster.local",destination_service_name="httpbin",destination_service_namespace="${s.ns.app}",` +
          `destination_workload="httpbin-v1",destination_workload_namespace="${s.ns.app}",destination_canonical_service="httpbin",` +
          `destination_canonical_revision="v1",request_protocol="http",response_code="${code}",response_flags="-"}`,
        want,
      })),
      {
        name: 'istio_requests_total 404 NR',
        query: `istio_requests_total{reporter="source",source_workload="${RELEASES.ingress.name}",destination_service="unknown",response_code="404",response_flags="NR"}`,
        want: MIX.noRoute,
      },
      {
        name: 'istio_request_duration_milliseconds_count',
        query: `sum(istio_request_duration_milliseconds_count{reporter="source",source_workload="${RELEASES.ingress.name}"})`,
        want: MIX.ok + MIX.upstream503 + MIX.noRoute,
      },
    ];
    // The baseline after a stats flush: histograms show the warm-up requests only once merged (5 s), and one
    // merged later would count as part of the mix.
    await new Promise((r) => setTimeout(r, 5500));
    await prom.scrapedSince(JOB, Date.now());
    const baseline = new Map<string, number>();
    for (const r of rows) baseline.set(r.name, await prom.value(r.query));

    for (let i = 0; i < MIX.ok; i++) assert.equal((await get(`/status/200?i=${i}`)).status, 200);
    for (let i = 0; i < MIX.upstream503; i++) assert.equal((await get(`/status/503?i=${i}`)).status, 503);
    for (let i = 0; i < MIX.noRoute; i++) assert.equal((await get(`/nr/${i}`, 'nowhere.example.com')).status, 404);
    // Histograms show what the last stats flush merged (Envoy's stats_flush_interval, 5 s).
    await new Promise((r) => setTimeout(r, 5500));
    await prom.scrapedSince(JOB, Date.now());

    const got: string[] = [];
    for (const r of rows) got.push(`${r.name}: ${(await prom.value(r.query)) - (baseline.get(r.name) ?? 0)}`);
    const all = await prom.query(
      `{__name__=~"envoy_cluster_upstream_rq.*|envoy_http_downstream_rq.*|istio_requests_total",__name__!~".*_bucket",job="${JOB}"} != 0`,
    );
    assert.deepEqual(
      got,
      rows.map((r) => `${r.name}: ${r.want}`),
      `series scraped:\n${formatSamples(all)}`,
    );
  });
});
