// Istio's standard metrics as a gateway reports them (istio_stats, client side): label values from the node, the
// cluster's and the endpoint's Istio metadata, the overrides of stats.PluginConfig, and the Prometheus names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IstioMetrics, compileStatsConfig, type HttpStreamReport, type LocalNode } from './istio-metrics.ts';
import { renderPrometheus } from './render.ts';
import { mergeSamples } from './merge.ts';
import { StatsStore } from './store.ts';

const NODE: LocalNode = {
  workloadName: 'istio-ingressgateway',
  namespace: 'istio-system',
  labels: {
    app: 'istio-ingressgateway',
    istio: 'ingressgateway',
    'service.istio.io/canonical-name': 'istio-ingressgateway',
    'service.istio.io/canonical-revision': 'latest',
  },
  clusterId: 'Kubernetes',
  istioVersion: '',
};

const config = (metrics: Parameters<typeof compileStatsConfig>[0]['metrics'] = [], disableHostHeaderFallback = true) =>
  compileStatsConfig({ disableHostHeaderFallback, tcpReportingMs: 5000, metrics });

const report = (r: Partial<HttpStreamReport>): HttpStreamReport => ({
  clusterName: '',
  service: undefined,
  workload: '',
  routeName: '',
  authority: 'httpbin.example.com',
  responseCode: 200,
  // Envoy's CEL attributes of the request, as access-log/cel-filter.ts builds them.
  attributes: () => ({
    request: { method: 'GET', path: '/status/200', url_path: '/status/200', host: 'httpbin.example.com', headers: { 'x-tenant': 'blue' } },
    response: { code: 200n },
  }),
  grpc: false,
  grpcStatus: undefined,
  responseFlags: '-',
  durationMs: 12,
  requestBytes: 80,
  responseBytes: 300,
  ...r,
});

/** The Prometheus lines of one metric, in output order. */
function lines(store: StatsStore, metric: string): string[] {
  store.mergeHistograms();
  return renderPrometheus(store.snapshot())
    .split('\n')
    .filter((l) => l.startsWith(`${metric}{`));
}

test('a request with no route: every destination label unknown, canonical revision latest, flags NR', () => {
  const store = new StatsStore();
  new IstioMetrics(store, NODE, config()).recordHttp(report({ responseCode: 404, responseFlags: 'NR' }));
  assert.deepEqual(lines(store, 'istio_requests_total'), [
    'istio_requests_total{reporter="source",source_workload="istio-ingressgateway",source_canonical_service="istio-ingressgateway",' +
      'source_canonical_revision="latest",source_workload_namespace="istio-system",source_principal="unknown",source_app="istio-ingressgateway",' +
      'source_version="",source_cluster="Kubernetes",destination_workload="unknown",destination_workload_namespace="unknown",' +
      'destination_principal="unknown",destination_app="unknown",destination_version="unknown",destination_service="unknown",' +
      'destination_canonical_service="unknown",destination_canonical_revision="latest",destination_service_name="unknown",' +
      'destination_service_namespace="unknown",destination_cluster="unknown",request_protocol="http",response_code="404",' +
      'grpc_response_status="",response_flags="NR",connection_security_policy="unknown"} 1',
  ]);
});

test("a routed request: the service from the cluster's metadata, the workload and its namespace from the endpoint's", () => {
  const store = new StatsStore();
  const m = new IstioMetrics(store, NODE, config());
  const r = report({
    clusterName: 'outbound|8000||httpbin.default.svc.cluster.local',
    service: { host: 'httpbin.default.svc.cluster.local', name: 'httpbin' },
    workload: 'httpbin;default;httpbin;v1;Kubernetes',
  });
  m.recordHttp(r);
  m.recordHttp(r);
  const [line] = lines(store, 'istio_requests_total');
  assert.match(line ?? '', /destination_workload="httpbin",destination_workload_namespace="default",/);
  assert.match(
    line ?? '',
    /destination_service="httpbin.default.svc.cluster.local",destination_canonical_service="httpbin",destination_canonical_revision="v1",/,
  );
  assert.match(line ?? '', /destination_service_name="httpbin",destination_service_namespace="default",destination_cluster="Kubernetes",/);
  assert.match(line ?? '', /\} 2$/);
  // A revision sent as '' (latest) reads latest; the duration and sizes are histograms with Envoy's buckets.
  m.recordHttp({ ...r, workload: 'httpbin;default;httpbin;;Kubernetes', responseCode: 503, responseFlags: 'UH', durationMs: 3 });
  assert.ok(lines(store, 'istio_requests_total').some((l) => /destination_canonical_revision="latest".*response_code="503".*response_flags="UH"/.test(l)));
  const buckets = lines(store, 'istio_request_duration_milliseconds_bucket').filter((l) => l.includes('response_code="200"'));
  assert.ok(buckets.some((l) => /le="25"\} 2$/.test(l)) && buckets.some((l) => /le="10"\} 0$/.test(l)), buckets.join('\n'));
  // Sums come from the log-linear bins, as Envoy's do: 300 counts as 305.
  assert.ok(lines(store, 'istio_response_bytes_sum').some((l) => l.endsWith(' 610')));
});

test('the Host header is the destination service only when the config allows the fallback', () => {
  const store = new StatsStore();
  new IstioMetrics(store, NODE, config([], false)).recordHttp(report({}));
  assert.match(lines(store, 'istio_requests_total')[0] ?? '', /destination_service="httpbin.example.com",.*destination_service_name="httpbin.example.com",/);
});

test('gRPC: request_protocol grpc, the status from the answer, else mapped from the HTTP status as Envoy maps it', () => {
  const store = new StatsStore();
  const m = new IstioMetrics(store, NODE, config());
  m.recordHttp(report({ grpc: true, grpcStatus: 5 }));
  m.recordHttp(report({ grpc: true, responseCode: 503, responseFlags: 'UH' }));
  const l = lines(store, 'istio_requests_total');
  assert.ok(l.some((x) => /request_protocol="grpc",response_code="200",grpc_response_status="5"/.test(x)));
  assert.ok(l.some((x) => /request_protocol="grpc",response_code="503",grpc_response_status="14"/.test(x)));
});

test('overrides: a dropped metric is not reported, a removed tag disappears, dimensions replace or add tags', () => {
  const store = new StatsStore();
  const c = config([
    { name: 'request_bytes', drop: true, tagsToRemove: [], dimensions: {} },
    { name: '', drop: false, tagsToRemove: ['source_principal', 'not_a_standard_tag'], dimensions: {} },
    {
      name: 'requests_total',
      drop: false,
      tagsToRemove: [],
      dimensions: {
        tenant: "request.headers['x-tenant']",
        response_code: "'overridden'",
        method: 'request.method',
        // Any CEL: a conditional, a missing key (an error: unknown), and one that does not parse (the tag dropped).
        class: "response.code >= 400 ? 'error' : 'ok'",
        missing: "request.headers['x-none']",
        request_protocol: 'request.method ==',
      },
    },
  ]);
  new IstioMetrics(store, NODE, c).recordHttp(report({}));
  assert.deepEqual(lines(store, 'istio_request_bytes_count'), []);
  const [line] = lines(store, 'istio_requests_total');
  assert.doesNotMatch(line ?? '', /source_principal/);
  assert.match(line ?? '', /response_code="overridden",.*connection_security_policy="unknown",class="ok",method="GET",missing="unknown",tenant="blue"\} 1$/);
  assert.doesNotMatch(line ?? '', /request_protocol/);
  assert.deepEqual(c.unsupported, ['request.method ==']);
  assert.doesNotMatch(lines(store, 'istio_response_bytes_count')[0] ?? '', /source_principal|tenant/);
});

test('istio_build is reported once per process, from the main thread', () => {
  const main = new StatsStore();
  const worker = new StatsStore();
  new IstioMetrics(main, NODE, config());
  new IstioMetrics(worker, NODE, config());
  const merged = mergeSamples(main.snapshot(), [worker.snapshot()]);
  assert.deepEqual(
    renderPrometheus(merged)
      .split('\n')
      .filter((l) => l.startsWith('istio_build')),
    ['istio_build{component="proxy",tag="unknown"} 1'],
  );
});

test("a worker's tagged histogram reaches the main thread's store at the flush", () => {
  const main = new StatsStore();
  const worker = new StatsStore();
  new IstioMetrics(worker, NODE, config()).recordHttp(report({ durationMs: 7 }));
  main.mergeHistograms([worker.takeHistogramDeltas()]);
  const out = renderPrometheus(mergeSamples(main.snapshot(), [worker.snapshot()]));
  assert.match(out, /^istio_request_duration_milliseconds_count\{reporter="source",.*\} 1$/m);
  assert.match(out, /^istio_requests_total\{reporter="source",.*\} 1$/m);
  assert.match(out, /^# TYPE istio_request_duration_milliseconds histogram$/m);
});

test('TCP: request_protocol tcp, no response code, the tags fixed by the first report', () => {
  const store = new StatsStore();
  const m = new IstioMetrics(store, NODE, config());
  const d = {
    clusterName: 'outbound|9000||tcp-echo.default.svc.cluster.local',
    service: { host: 'tcp-echo.default.svc.cluster.local', name: 'tcp-echo' },
    workload: '',
    routeName: '',
    authority: '',
  };
  const h = m.tcpHandles(d, '-');
  m.add(h.opened, 1);
  m.add(h.sent, 42);
  m.add(h.closed, 1);
  const [sent] = lines(store, 'istio_tcp_sent_bytes_total');
  assert.match(
    sent ?? '',
    /destination_service="tcp-echo.default.svc.cluster.local",.*request_protocol="tcp",response_flags="-",connection_security_policy="unknown"\} 42$/,
  );
  assert.doesNotMatch(sent ?? '', /response_code/);
  assert.equal(m.tcpHandles(d, '-'), h);
});
