// Tracing as Istio configures it, into a real OpenTelemetry Collector (e2e/otelcol/build.sh): a `meshgate local`
// gateway started with --mesh-config naming tracing providers (defaultProviders.tracing, extensionProviders
// opentelemetry over gRPC and HTTP, zipkin), the collector behind a Service as in a cluster. Asserted from what the
// collector received and what a recording backend saw:
// - parent/child ids across two hops: the client's traceparent -> the gateway's span (its child) -> the upstream
//   attempt's span (spawn_upstream_span) -> the traceparent the next hop receives; the next hop is the gateway
//   again (a route back to its own listener), whose span is a child of the first hop's upstream span;
// - sampling: 100 % samples, ~0 % does not (yet propagates with sampled 00), x-client-trace-id forces a trace,
//   x-envoy-force-trace does not at an edge (Envoy strips it from external requests), a sampled parent wins;
//   the decision is in the x-request-id the upstream gets, and in the http.<prefix>.tracing.* counters;
// - Envoy's and Istio's tags: http.status_code, upstream_cluster, http.method/url, guid:x-request-id, istio.*,
//   response_flags UH on a 503 with error and an OTLP error status;
// - OTLP/HTTP and Zipkin (B3 propagation) providers switched live through the mesh config;
// - with the collector down, requests still succeed at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, freePort } from '../lib/process.ts';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { gatewayYaml, serviceYaml, startGateway, type Gateway } from '../lib/gateway.ts';
import { headerValue, startRecordingBackend, type RecordedRequest, type RecordingBackend } from '../lib/recording-backend.ts';
import { startCollector, type Collector, type ReceivedSpan } from '../lib/otelcol.ts';

const COLLECTOR_IP = '127.0.43.1';
const BACKEND_IP = '127.0.43.2';
const HOST = 'traced.example.com';
const HOP = 'hop.example.com';
const COLLECTOR = 'otel-collector.observability.svc.cluster.local';
const ZIPKIN = 'zipkin.observability.svc.cluster.local';

const SERVER = 2;
const CLIENT = 3;

/** The mesh config: `provider` traces, with defaultConfig.tracing.sampling `sampling` (percent). */
function meshConfig(provider: string, sampling: number): string {
  return `defaultConfig:
  tracing:
    sampling: ${sampling}
    customTags:
      team: {literal: {value: edge}}
defaultProviders:
  tracing: [${provider}]
extensionProviders:
- name: otel-grpc
  opentelemetry: {service: ${COLLECTOR}, port: 4317, grpc: {timeout: 2s}}
- name: otel-http
  opentelemetry: {service: ${COLLECTOR}, port: 4318, http: {path: /v1/traces, timeout: 2s}}
- name: zipkin
  zipkin: {service: ${ZIPKIN}, port: 9411}
`;
}

/** The collector's Services (Istio's cluster ports) with endpoints on the ports it listens on. */
function collectorYaml(c: Collector): string {
  const svc = (name: string, ports: { name: string; port: number; target: number }[]): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: observability}
spec:
  selector: {app: ${name}}
  ports: [${ports.map((p) => `{name: ${p.name}, port: ${p.port}, targetPort: ${p.target}}`).join(', ')}]
---
apiVersion: v1
kind: Pod
metadata: {name: ${name}-0, namespace: observability, labels: {app: ${name}}}
status: {podIP: ${COLLECTOR_IP}, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-slice, namespace: observability, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [${ports.map((p) => `{name: ${p.name}, port: ${p.target}, protocol: TCP}`).join(', ')}]
endpoints:
- {addresses: ["${COLLECTOR_IP}"], conditions: {ready: true}, targetRef: {kind: Pod, name: ${name}-0, namespace: observability}}
`;
  return `${svc('otel-collector', [
    { name: 'grpc-otlp', port: 4317, target: c.grpcPort },
    { name: 'http-otlp', port: 4318, target: c.httpPort },
  ])}---\n${svc('zipkin', [{ name: 'http-zipkin', port: 9411, target: c.zipkinPort }])}`;
}

const hex = (n: number): string => n.toString(16).padStart(2, '0');
/** A fresh client trace context: 32-hex trace id, 16-hex span id. */
function clientContext(): { traceId: string; spanId: string } {
  const r = (bytes: number): string => Array.from({ length: bytes }, () => hex(Math.floor(Math.random() * 256))).join('');
  return { traceId: r(16), spanId: r(8) };
}

describe('local mode: tracing from the mesh config into a real OpenTelemetry Collector', () => {
  let gw: Gateway;
  let collector: Collector;
  let backend: RecordingBackend;
  let dir: string;
  let meshFile: string;
  let agent = 0;

  const request = (host: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> =>
    rawRequest('127.0.0.1', gw.port, [`GET ${path} HTTP/1.1`, `Host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n'));
  /** A request the backend can be asked about by its User-Agent. */
  const traced = async (host: string, headers: Record<string, string> = {}): Promise<{ res: RawResponse; ua: string; seen: RecordedRequest | undefined }> => {
    const ua = `tracing-e2e-${++agent}`;
    const res = await request(host, `/items/${agent}?q=1`, { 'user-agent': ua, ...headers });
    const seen = backend.requests.find((r) => headerValue(r, 'user-agent') === ua);
    return { res, ua, seen };
  };
  const spansOf = (ua: string, count: number): Promise<ReceivedSpan[]> =>
    collector.waitFor(`${count} span(s) of ${ua}`, (s) => s.traceId !== '' && spanUa(s) === ua, count);
  /** Spans of a request: the gateway's carries user_agent; the upstream span shares its trace. */
  const spanUa = (s: ReceivedSpan): string | undefined =>
    s.attributes.user_agent ?? collector.spans().find((o) => o.spanId === s.parentSpanId)?.attributes.user_agent;
  const setMesh = async (provider: string, sampling: number, probe: () => Promise<boolean>): Promise<void> => {
    writeFileSync(meshFile, meshConfig(provider, sampling));
    await eventually(`the mesh config (${provider}, ${sampling} %) to apply`, async () => ((await probe()) ? true : undefined), 20_000, 200);
  };

  before(async () => {
    collector = await startCollector(COLLECTOR_IP);
    backend = await startRecordingBackend(BACKEND_IP, await freePort());
    dir = mkdtempSync(join(tmpdir(), 'meshgate-tracing-'));
    meshFile = join(dir, 'mesh');
    writeFileSync(meshFile, meshConfig('otel-grpc', 100));
    gw = await startGateway({ concurrency: 2, args: ['--mesh-config', meshFile] });
    gw.write('10-gateway.yaml', gatewayYaml('gw', [HOST, HOP, 'empty.example.com']));
    gw.write('20-backend.yaml', serviceYaml('backend', backend.port, [{ ip: BACKEND_IP }]));
    gw.write('21-empty.yaml', serviceYaml('empty', backend.port, []).replace(/endpoints:\n$/, 'endpoints: []\n'));
    // The second hop: the gateway itself, reached through a Service whose endpoint is its own listener.
    gw.write('22-self.yaml', serviceYaml('self', gw.port, [{ ip: '127.0.0.1' }]));
    gw.write('23-collector.yaml', collectorYaml(collector));
    gw.write(
      '30-vs.yaml',
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: traced, namespace: default}
spec:
  hosts: [${HOST}]
  gateways: [gw]
  http:
  - route: [{destination: {host: backend}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: hop, namespace: default}
spec:
  hosts: [${HOP}]
  gateways: [gw]
  http:
  - rewrite: {authority: ${HOST}}
    route: [{destination: {host: self}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: empty, namespace: default}
spec:
  hosts: [empty.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: empty}}]
`,
    );
    await eventually('the routes', async () => ((await request(HOST, '/')).status === 200 ? true : undefined), 20_000, 200);
    await eventually('the empty route', async () => ((await request('empty.example.com', '/')).status === 503 ? true : undefined), 20_000, 200);
  });

  after(async () => {
    await gw?.stop();
    await collector?.stop();
    await backend?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('OTLP gRPC: the gateway span is the child of the client context, the upstream span its child, the backend gets the upstream span as parent', async () => {
    const client = clientContext();
    const { res, ua, seen } = await traced(HOST, { traceparent: `00-${client.traceId}-${client.spanId}-01`, tracestate: 'vendor=1' });
    assert.equal(res.status, 200);
    assert.ok(seen, 'the backend got the request');
    const tp = headerValue(seen, 'traceparent') ?? '';
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(tp);
    assert.ok(m, `a sampled W3C traceparent upstream, got ${tp}`);
    assert.equal(m[1], client.traceId, 'the same trace');
    assert.equal(headerValue(seen, 'tracestate'), 'vendor=1', 'the tracestate is carried on');
    const [a, b] = await spansOf(ua, 2);
    const gwSpan = [a, b].find((s) => s?.kind === SERVER) as ReceivedSpan;
    const upSpan = [a, b].find((s) => s?.kind === CLIENT) as ReceivedSpan;
    assert.ok(gwSpan && upSpan, 'a SERVER span for the request and a CLIENT span for the upstream attempt');
    assert.equal(gwSpan.traceId, client.traceId);
    assert.equal(gwSpan.parentSpanId, client.spanId, "the gateway's span is the client span's child");
    assert.equal(upSpan.traceId, client.traceId);
    assert.equal(upSpan.parentSpanId, gwSpan.spanId, "the upstream span is the gateway span's child");
    assert.equal(m[2], upSpan.spanId, "the backend's parent is the upstream span");
    assert.equal(gwSpan.service, 'istio-ingressgateway.istio-system', "the resource's service.name: the gateway's service cluster");
    // Envoy names it after the cluster's observability name: Istio's alt_stat_name, with its ';' delimiter.
    assert.equal(upSpan.name, `router outbound|${backend.port}||backend.default.svc.cluster.local; egress`);
    assert.equal(gwSpan.name, `backend.default.svc.cluster.local:${backend.port}/*`, "the route's decorator names the span");
    const t = gwSpan.attributes;
    assert.equal(t['http.status_code'], '200');
    assert.equal(t['http.method'], 'GET');
    assert.equal(t['http.url'], `http://${HOST}/items/${agent}?q=1`);
    assert.equal(t['http.protocol'], 'HTTP/1.1');
    assert.equal(t['upstream_cluster'], `outbound|${backend.port}||backend.default.svc.cluster.local`);
    assert.equal(t['upstream_cluster.name'], `outbound|${backend.port}||backend.default.svc.cluster.local;`);
    assert.equal(t['response_flags'], '-');
    assert.equal(t['component'], 'proxy');
    assert.equal(t['downstream_cluster'], '-');
    assert.equal(t['peer.address'], '127.0.0.1');
    assert.equal(t['istio.namespace'], 'istio-system');
    assert.equal(t['istio.canonical_revision'], 'latest');
    assert.equal(t['istio.mesh_id'], 'unknown');
    assert.equal(t['istio.cluster_id'], 'Kubernetes');
    assert.equal(t['team'], 'edge', 'defaultConfig.tracing.customTags');
    assert.match(t['node_id'] ?? '', /^router~127\.0\.0\.1~.+\.istio-system~istio-system\.svc\.cluster\.local$/, "Envoy's node id");
    assert.equal(t['zone'], '', 'no locality zone');
    assert.equal(t['error'], undefined);
    const rid = headerValue(seen, 'x-request-id') ?? '';
    assert.equal(t['guid:x-request-id'], rid, 'the request id the upstream got');
    assert.equal(rid[14], '9', 'the x-request-id carries the sampling decision (UUID version digit 9: sampled)');
    assert.equal(upSpan.attributes['upstream_address'], `${BACKEND_IP}:${backend.port}`);
    assert.equal(upSpan.attributes['http.status_code'], '200');
    assert.ok(gwSpan.startNs <= upSpan.startNs && upSpan.endNs <= gwSpan.endNs + 1_000_000n, 'the upstream span lies within the request span');
  });

  test("two gateway hops: the second gateway span is a child of the first hop's upstream span", async () => {
    const { res, ua, seen } = await traced(HOP);
    assert.equal(res.status, 200);
    assert.ok(seen);
    // hop 1: SERVER (hop.example.com) -> CLIENT (router self) ; hop 2: SERVER (traced.example.com) -> CLIENT (router backend).
    const gwSpans = await collector.waitFor('the gateway span of each hop', (s) => s.attributes.user_agent === ua && s.kind === SERVER, 2);
    const hop2 = gwSpans.find((s) => s.attributes['upstream_cluster']?.includes('backend'));
    const hop1 = gwSpans.find((s) => s.attributes['upstream_cluster']?.includes('self'));
    assert.ok(hop1 && hop2, 'a gateway span for each hop');
    const hop1Up = await collector.waitFor('the first hop upstream span', (s) => s.parentSpanId === hop1.spanId && s.kind === CLIENT);
    assert.equal(hop2.parentSpanId, hop1Up[0]?.spanId, 'the second hop continues the trace from the first hop upstream span');
    assert.equal(hop2.traceId, hop1.traceId);
    assert.equal(hop1.parentSpanId, '', 'the first hop started the trace');
  });

  test('a 503 with no healthy upstream: response_flags UH, error, an OTLP error status', async () => {
    const { res, ua } = await traced('empty.example.com');
    assert.equal(res.status, 503);
    const [s] = await collector.waitFor(`the span of ${ua}`, (x) => x.attributes.user_agent === ua);
    assert.equal(s?.attributes['http.status_code'], '503');
    assert.equal(s?.attributes['response_flags'], 'UH');
    assert.equal(s?.attributes['error'], 'true');
    assert.equal(s?.status, 2);
    assert.equal(s?.attributes['upstream_cluster'], 'outbound|' + String(backend.port) + '||empty.default.svc.cluster.local');
  });

  test('sampling ~0 %: nothing exported, sampled 00 propagated; x-client-trace-id and a sampled parent trace; x-envoy-force-trace does not at an edge', async () => {
    const prefix = `http.outbound_0.0.0.0_${gw.port};.tracing.`;
    await setMesh('otel-grpc', 0.0001, async () => {
      const r = await traced(HOST);
      return r.seen !== undefined && /-00$/.test(headerValue(r.seen, 'traceparent') ?? '');
    });
    const before = {
      random: await gw.stat(`${prefix}random_sampling`),
      client: await gw.stat(`${prefix}client_enabled`),
      not: await gw.stat(`${prefix}not_traceable`),
    };
    const plain = await traced(HOST);
    const forced = await traced(HOST, { 'x-envoy-force-trace': 'true' });
    const client = await traced(HOST, { 'x-client-trace-id': 'client-42' });
    const ctx = clientContext();
    const parent = await traced(HOST, { traceparent: `00-${ctx.traceId}-${ctx.spanId}-01` });
    for (const r of [plain, forced, client, parent]) assert.equal(r.res.status, 200);
    assert.match(headerValue(plain.seen as RecordedRequest, 'traceparent') ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, 'unsampled, still propagated');
    assert.equal((headerValue(plain.seen as RecordedRequest, 'x-request-id') ?? '')[14], '4', 'not traced: a plain v4 UUID');
    assert.equal(headerValue(forced.seen as RecordedRequest, 'x-envoy-force-trace'), undefined, 'stripped from an external request');
    assert.equal((headerValue(client.seen as RecordedRequest, 'x-request-id') ?? '')[14], 'b', 'client-forced (b)');
    const cs = (await spansOf(client.ua, 2)).find((s) => s.kind === SERVER);
    assert.equal(cs?.attributes['guid:x-client-trace-id'], 'client-42');
    const ps = (await spansOf(parent.ua, 2)).find((s) => s.kind === SERVER);
    assert.equal(ps?.parentSpanId, ctx.spanId, "a sampled parent is followed whatever the gateway's own decision");
    // Give the exporter time to send anything it would have: none of the unsampled requests has a span.
    await new Promise((r) => setTimeout(r, 1500));
    const exported = new Set(collector.spans().map((s) => s.attributes.user_agent));
    assert.ok(!exported.has(plain.ua) && !exported.has(forced.ua), 'unsampled requests are not exported');
    assert.equal(await gw.stat(`${prefix}client_enabled`), before.client + 1);
    assert.equal(
      await gw.stat(`${prefix}not_traceable`),
      before.not + 3,
      'the plain, forced and parent requests (the parent decides the span, not the counter)',
    );
    assert.equal(await gw.stat(`${prefix}random_sampling`), before.random);
  });

  test('OTLP over HTTP: the same spans through the http provider', async () => {
    await setMesh('otel-http', 100, async () => {
      const r = await traced(HOST);
      return r.seen !== undefined && (headerValue(r.seen, 'x-request-id') ?? '')[14] === '9';
    });
    const { ua } = await traced(HOST);
    const spans = await spansOf(ua, 2);
    assert.deepEqual(spans.map((s) => s.kind).sort(), [SERVER, CLIENT]);
    assert.ok((await gw.stat('tracing.opentelemetry.http_reports_success')) > 0, 'reports over OTLP/HTTP succeeded');
  });

  test('Zipkin: B3 headers upstream, the span a child of the client B3 context', async () => {
    await setMesh('zipkin', 100, async () => {
      const r = await traced(HOST);
      return r.seen !== undefined && headerValue(r.seen, 'x-b3-traceid') !== undefined;
    });
    const client = clientContext();
    const { res, ua, seen } = await traced(HOST, { 'x-b3-traceid': client.traceId, 'x-b3-spanid': client.spanId, 'x-b3-sampled': '1' });
    assert.equal(res.status, 200);
    assert.ok(seen);
    assert.equal(headerValue(seen, 'x-b3-traceid'), client.traceId);
    assert.equal(headerValue(seen, 'x-b3-sampled'), '1');
    assert.equal(headerValue(seen, 'traceparent'), undefined, 'no W3C header from the Zipkin tracer (USE_B3)');
    const spans = await spansOf(ua, 2);
    const gwSpan = spans.find((s) => s.kind === SERVER) as ReceivedSpan;
    const upSpan = spans.find((s) => s.kind === CLIENT) as ReceivedSpan;
    assert.equal(gwSpan.traceId, client.traceId);
    assert.equal(gwSpan.parentSpanId, client.spanId);
    assert.equal(upSpan.parentSpanId, gwSpan.spanId);
    assert.equal(headerValue(seen, 'x-b3-spanid'), upSpan.spanId);
    assert.equal(headerValue(seen, 'x-b3-parentspanid'), gwSpan.spanId);
    assert.equal(gwSpan.service, 'istio-ingressgateway.istio-system', "Zipkin's local endpoint: the gateway's service cluster");
    assert.equal(gwSpan.attributes['http.status_code'], '200');
  });

  test('a Telemetry overrides the mesh: randomSamplingPercentage 0 stops the spans, then 100 with a custom tag brings them back', async () => {
    await setMesh('otel-grpc', 100, async () => {
      const r = await traced(HOST);
      return r.seen !== undefined && /-01$/.test(headerValue(r.seen, 'traceparent') ?? '');
    });
    const telemetry = (tracing: string): string =>
      `apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: mesh-default, namespace: istio-system}\nspec:\n${tracing}`;
    gw.write('40-telemetry.yaml', telemetry('  tracing:\n  - providers: [{name: otel-grpc}]\n    randomSamplingPercentage: 0\n'));
    await eventually(
      'the Telemetry (0 %) to apply',
      async () => {
        const r = await traced(HOST);
        return r.seen !== undefined && /-00$/.test(headerValue(r.seen, 'traceparent') ?? '') ? true : undefined;
      },
      20_000,
      200,
    );
    const off = await traced(HOST);
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(!collector.spans().some((sp) => sp.attributes.user_agent === off.ua), 'not sampled under the Telemetry');

    gw.write(
      '40-telemetry.yaml',
      telemetry('  tracing:\n  - providers: [{name: otel-grpc}]\n    randomSamplingPercentage: 100\n    customTags:\n      tier: {literal: {value: gold}}\n'),
    );
    await eventually(
      'the Telemetry (100 %, tier tag) to apply',
      async () => {
        const r = await traced(HOST);
        if (r.seen === undefined || !/-01$/.test(headerValue(r.seen, 'traceparent') ?? '')) return undefined;
        const [gwSpan] = (await spansOf(r.ua, 2)).filter((sp) => sp.kind === SERVER);
        return gwSpan?.attributes.tier === 'gold' ? true : undefined;
      },
      20_000,
      200,
    );
    gw.write('40-telemetry.yaml', telemetry('  {}\n').replace('spec:\n  {}', 'spec: {}'));
  });

  test('the collector down: requests still succeed at once, the failed reports are counted', async () => {
    await setMesh('otel-grpc', 100, async () => {
      const r = await traced(HOST);
      return r.seen !== undefined && headerValue(r.seen, 'traceparent') !== undefined;
    });
    await collector.stop();
    // Two workers: each has its own exporter; their counters add up in /stats.
    const failed = (): Promise<number> => gw.stat('tracing.opentelemetry.grpc_reports_failed');
    const before = await failed();
    const started = Date.now();
    for (let i = 0; i < 12; i++) assert.equal((await traced(HOST)).res.status, 200);
    assert.ok(Date.now() - started < 5000, `12 requests took ${Date.now() - started} ms`);
    await eventually('failed span reports', async () => ((await failed()) > before ? true : undefined), 15_000, 200);
  });
});
