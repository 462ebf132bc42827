// The proxy's tracing pieces against Envoy's: the sampling decision packed into x-request-id
// (mutateTracingRequestHeader), W3C and B3 context extraction and injection, the HCM tracing config (what is
// NACKed), and the OTLP / Zipkin encodings. The e2e suite (e2e/local/tracing.test.ts) covers a real collector.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { pino } from 'pino';
import { StatScope, StatsStore } from '../stats/store.ts';
import { ClusterManager } from '../upstream/cluster-manager.ts';
import { ConfigError } from '../xds/json.ts';
import { parseRequestIdExtension, parseTracing, type TracingConfig } from './config.ts';
import { encodeOtlp, encodeZipkin } from './encode.ts';
import { HttpTracer } from './http-tracer.ts';
import { CLIENT_FORCED, NOT_TRACEABLE, SAMPLING, SERVICE_FORCED, traceDecision, withTraceReason } from './sampling.ts';
import { KIND_SERVER, Span, extractB3, extractW3c, injectB3, injectW3c } from './span.ts';

const CFG: TracingConfig = {
  clientSampling: 100,
  randomSampling: 100, // 1 %
  overallSampling: 100,
  maxPathTagLength: 256,
  customTags: [],
  tracer: undefined,
  spawnUpstreamSpan: true,
  useRequestIdForTraceSampling: true,
  packTraceReason: true,
};

/** A v4 UUID whose first 8 hex digits make `n` (mod 10000 is what sampling reads). */
const rid = (n: number): string => `${n.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;

const decisions: { name: string; cfg?: Partial<TracingConfig>; requestId: string; client?: boolean; force?: boolean; random?: number; want: number }[] = [
  { name: 'random sampling: 99 < 100 of 10000 (1 %) is sampled', requestId: rid(99), want: SAMPLING },
  { name: 'random sampling: 100 is not', requestId: rid(100), want: NOT_TRACEABLE },
  { name: 'the UUID modulo 10000', requestId: rid(10_050), want: SAMPLING },
  { name: 'x-client-trace-id with client_sampling 100', requestId: rid(5000), client: true, want: CLIENT_FORCED },
  { name: 'x-client-trace-id over client_sampling', cfg: { clientSampling: 50 }, requestId: rid(5000), client: true, random: 0.7, want: NOT_TRACEABLE },
  { name: 'x-envoy-force-trace (an internal request)', requestId: rid(5000), force: true, want: SERVICE_FORCED },
  { name: 'overall_sampling 0 drops a sampled one', cfg: { overallSampling: 0 }, requestId: rid(1), want: NOT_TRACEABLE },
  { name: 'a request id that already carries a decision keeps it', requestId: '00001388-0000-9000-8000-000000000000', want: SAMPLING },
  { name: 'not a UUID: nothing is traced', requestId: 'not-a-uuid', want: NOT_TRACEABLE },
  { name: 'without use_request_id_for_trace_sampling the tracer decides', cfg: { useRequestIdForTraceSampling: false }, requestId: rid(5000), want: SAMPLING },
];

for (const c of decisions) {
  test(`sampling: ${c.name}`, () => {
    const got = traceDecision({ ...CFG, ...c.cfg }, c.requestId, c.client === true, c.force === true, () => c.random ?? 0);
    assert.equal(got, c.want);
  });
}

test('sampling: the trace reason is packed in the UUID version digit (9 sampled, a forced, b client, 4 none)', () => {
  const id = rid(7);
  assert.equal(withTraceReason(id, SAMPLING)[14], '9');
  assert.equal(withTraceReason(id, SERVICE_FORCED)[14], 'a');
  assert.equal(withTraceReason(id, CLIENT_FORCED)[14], 'b');
  assert.equal(withTraceReason(withTraceReason(id, SAMPLING), NOT_TRACEABLE), id);
  assert.equal(withTraceReason('short', SAMPLING), 'short');
});

test('W3C: a traceparent is a parent (its sampled flag), tracestates join; bad ones are invalid', () => {
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  assert.deepEqual(extractW3c(['traceparent', tp, 'tracestate', 'a=1', 'tracestate', 'b=2']), {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    sampled: true,
    tracestate: 'a=1,b=2',
  });
  assert.equal(extractW3c(['x', 'y']), undefined);
  for (const bad of [
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331',
    `ff${tp.slice(2)}`,
    tp.replace('0af7651916cd43dd8448eb211c80319c', '0'.repeat(32)),
  ])
    assert.equal(extractW3c(['traceparent', bad]), 'invalid', bad);
});

test('W3C: injection writes the span as parent with its sampled flag and replaces what the client sent', () => {
  const s = new Span('0af7651916cd43dd8448eb211c80319c', '00f067aa0ba902b7', '', 'n', KIND_SERVER, 0, false, 'k=v');
  const h = ['traceparent', 'old', 'tracestate', 'x=1', 'tracestate', 'y=2'];
  injectW3c(s, h);
  assert.deepEqual(h, ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-00', 'tracestate', 'k=v']);
});

test('B3: multi headers, the single b3 header, a sampling decision alone; injection as x-b3-*', () => {
  assert.deepEqual(extractB3(['x-b3-traceid', '463ac35c9f6413ad', 'x-b3-spanid', 'a2fb4a1d1a96d312', 'x-b3-sampled', '1']), {
    parent: { traceId: '463ac35c9f6413ad', spanId: 'a2fb4a1d1a96d312', sampled: true, tracestate: '' },
    sampled: true,
  });
  assert.deepEqual(extractB3(['b3', '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0']), {
    parent: { traceId: '80f198ee56343ba864fe8b2a57d3eff7', spanId: 'e457b5a2e4d86bd1', sampled: false, tracestate: '' },
    sampled: false,
  });
  assert.deepEqual(extractB3(['b3', '0']), { sampled: false });
  assert.equal(extractB3(['x-b3-traceid', '463ac35c9f6413ad']), 'invalid');
  const s = new Span('463ac35c9f6413ad', 'e457b5a2e4d86bd1', 'a2fb4a1d1a96d312', 'n', KIND_SERVER, 0, true, '');
  const h = ['b3', '1'];
  injectB3(s, h);
  assert.deepEqual(h, ['x-b3-traceid', '463ac35c9f6413ad', 'x-b3-spanid', 'e457b5a2e4d86bd1', 'x-b3-parentspanid', 'a2fb4a1d1a96d312', 'x-b3-sampled', '1']);
});

test("config: Istio's tracing block and request id extension; Envoy's percent rounding", () => {
  const c = parseTracing(
    {
      client_sampling: { value: 100 },
      random_sampling: { value: 0.015 },
      overall_sampling: { value: 100 },
      custom_tags: [
        { tag: 'istio.namespace', literal: { value: 'istio-system' } },
        { tag: 'h', request_header: { name: 'X-Foo', default_value: 'd' } },
      ],
      spawn_upstream_span: true,
      provider: {
        name: 'envoy.tracers.opentelemetry',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
          grpc_service: { envoy_grpc: { cluster_name: 'outbound|4317||otel.obs.svc.cluster.local', authority: 'otel.obs.svc.cluster.local' }, timeout: '3s' },
          service_name: 'gw.istio-system',
        },
      },
    },
    parseRequestIdExtension(
      { typed_config: { '@type': 'type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig', use_request_id_for_trace_sampling: true } },
      'rid',
    ),
    'tracing',
  );
  assert.equal(c?.randomSampling, 2, '0.015 % of 10000, rounded');
  assert.equal(c?.clientSampling, 100);
  assert.equal(c?.maxPathTagLength, 256);
  assert.deepEqual(c?.customTags[1], { tag: 'h', kind: 'header', name: 'x-foo', dflt: 'd' });
  assert.equal(c?.tracer?.kind, 'opentelemetry');
  assert.equal(c?.tracer?.kind === 'opentelemetry' && c.tracer.timeoutMs, 3000);
});

test('config: what is not implemented is NACKed with the field', () => {
  const rid = { useForSampling: true, pack: true };
  assert.throws(() => parseTracing({ verbose: true }, rid, 't'), ConfigError);
  assert.throws(
    () =>
      parseTracing(
        { provider: { name: 'envoy.tracers.datadog', typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.DatadogConfig' } } },
        rid,
        't',
      ),
    /not supported by this proxy/,
  );
  assert.throws(
    () =>
      parseTracing(
        {
          provider: {
            name: 'envoy.tracers.zipkin',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig',
              collector_cluster: 'z',
              collector_endpoint: '/api/v2/spans',
              collector_endpoint_version: 'HTTP_PROTO',
            },
          },
        },
        rid,
        't',
      ),
    /only HTTP_JSON/,
  );
  assert.throws(
    () => parseRequestIdExtension({ typed_config: { '@type': 'type.googleapis.com/envoy.extensions.request_id.other.v3.Other' } }, 'r'),
    /not supported/,
  );
});

test('encoding: an OTLP request decodes with the OTLP schema; Zipkin v2 JSON has ids, kind, micros, tags', () => {
  const s = new Span('0af7651916cd43dd8448eb211c80319c', '00f067aa0ba902b7', 'b7ad6b7169203331', 'op', KIND_SERVER, 0, true, '');
  s.startUs = 1_700_000_000_000_123;
  s.endUs = s.startUs + 1500;
  s.setTag('http.status_code', '503');
  s.setTag('error', 'true');
  const root = new protobuf.Root().loadSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'xds', 'protos', 'opentelemetry', 'trace.proto'), {
    keepCase: true,
  });
  const T = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const o = T.toObject(T.decode(encodeOtlp('gw.ns', [s])), { longs: String, bytes: String, enums: Number }) as {
    resource_spans: { resource: { attributes: { key: string; value: { string_value: string } }[] }; scope_spans: { spans: Record<string, unknown>[] }[] }[];
  };
  const rs = o.resource_spans[0];
  assert.deepEqual(rs?.resource.attributes, [{ key: 'service.name', value: { string_value: 'gw.ns' } }]);
  const span = rs?.scope_spans[0]?.spans[0] as Record<string, unknown>;
  assert.equal(Buffer.from(span.trace_id as string, 'base64').toString('hex'), s.traceId);
  assert.equal(Buffer.from(span.parent_span_id as string, 'base64').toString('hex'), s.parentId);
  assert.equal(span.start_time_unix_nano, '1700000000000123000');
  assert.equal(span.kind, 2);
  assert.deepEqual(span.status, { code: 2 });
  const z = JSON.parse(encodeZipkin('gw.ns', '10.0.0.1', [s])) as Record<string, unknown>[];
  assert.deepEqual(z[0], {
    traceId: s.traceId,
    parentId: s.parentId,
    id: s.spanId,
    kind: 'SERVER',
    name: 'op',
    timestamp: s.startUs,
    duration: 1500,
    localEndpoint: { serviceName: 'gw.ns', ipv4: '10.0.0.1' },
    tags: { 'http.status_code': '503', error: 'true' },
  });
});

test("spans: the request span's tags as Envoy's finalizeDownstreamSpan sets them; the attempt's span; the stream's counters", () => {
  const store = new StatsStore();
  const log = pino({ level: 'silent' });
  const cfg: TracingConfig = {
    ...CFG,
    randomSampling: 10000,
    maxPathTagLength: 8,
    customTags: [
      { tag: 'lit', kind: 'literal', value: 'v' },
      { tag: 'hdr', kind: 'header', name: 'x-team', dflt: 'none' },
      { tag: 'dry', kind: 'metadata', filter: 'envoy.filters.http.rbac', path: ['shadow'], dflt: '' },
    ],
    tracer: {
      kind: 'opentelemetry',
      serviceName: 'gw.ns',
      cluster: 'no-such-cluster',
      transport: 'grpc',
      authority: 'c',
      path: '/x',
      timeoutMs: 0,
      headers: [],
    },
  };
  const tracer = new HttpTracer(cfg, new StatScope(store, 'http.p.'), {
    clusters: new ClusterManager(store, log),
    store,
    log,
    node: { id: 'router~1', serviceCluster: 'gw.ns', localAddress: '10.0.0.1' },
  });
  const headers = ['x-request-id', rid(3), 'content-type', 'application/grpc', 'x-forwarded-proto', 'https', 'grpc-timeout', '2S', 'x-client-trace-id', 'c1'];
  const r = { headers, requestId: rid(3) };
  const t = tracer.begin(r, 'api.example.com', performance.now());
  assert.ok(t);
  assert.equal(r.requestId[14], 'b', 'x-client-trace-id: client-forced, packed into the request id');
  assert.equal(headers[1], r.requestId);
  assert.equal(t.span.name, 'egress api.example.com');
  const up: string[] = [];
  t.onUpstreamRequest(up, { name: 'outbound|8080||api', observabilityName: 'outbound|8080||api;' }, '10.1.1.1:8080', 'HTTP/2', performance.now());
  t.onUpstreamStatus(200);
  assert.match(up[1] ?? '', new RegExp(`^00-${t.span.traceId}-[0-9a-f]{16}-01$`));
  t.finish({
    headers,
    method: 'POST',
    authority: 'api.example.com',
    path: '/pkg.Svc/Method',
    protocol: 'HTTP/2',
    peerAddress: '192.0.2.1',
    bytesReceived: 12,
    bytesSent: 34,
    status: 503,
    flags: 0,
    cluster: { name: 'outbound|8080||api', observabilityName: 'outbound|8080||api;' },
    responseHeaders: ['grpc-status', '14', 'grpc-message', 'unavailable'],
    metadata: (filter, path) => (filter === 'envoy.filters.http.rbac' && path[0] === 'shadow' ? 'allowed' : undefined),
    endHr: performance.now(),
  });
  const tags: Record<string, string> = {};
  for (let i = 0; i < t.span.tags.length; i += 2) tags[t.span.tags[i] as string] = t.span.tags[i + 1] as string;
  assert.deepEqual(tags, {
    node_id: 'router~1',
    zone: '',
    'guid:x-request-id': r.requestId,
    'http.url': 'https://api.example.com/pkg.Svc',
    'http.method': 'POST',
    downstream_cluster: '-',
    user_agent: '-',
    'http.protocol': 'HTTP/2',
    'peer.address': '192.0.2.1',
    'guid:x-client-trace-id': 'c1',
    'grpc.path': '/pkg.Svc/Method',
    'grpc.authority': 'api.example.com',
    'grpc.content_type': 'application/grpc',
    'grpc.timeout': '2S',
    request_size: '12',
    response_size: '34',
    component: 'proxy',
    upstream_cluster: 'outbound|8080||api',
    'upstream_cluster.name': 'outbound|8080||api;',
    'http.status_code': '503',
    response_flags: '-',
    error: 'true',
    lit: 'v',
    hdr: 'none',
    dry: 'allowed',
    'grpc.status_code': '14',
    'grpc.message': 'unavailable',
  });
  assert.ok(t.span.endUs >= t.span.startUs && t.span.startUs > 1.6e15, 'epoch microseconds');
  assert.equal(store.valueOf('http.p.tracing.client_enabled'), 1);
});

test('spans: without spawn_upstream_span the request span is a CLIENT span (an OUTBOUND listener) and its own context goes upstream', () => {
  const store = new StatsStore();
  const log = pino({ level: 'silent' });
  const cfg: TracingConfig = {
    ...CFG,
    randomSampling: 10000,
    spawnUpstreamSpan: false,
    tracer: { kind: 'zipkin', cluster: 'z', path: '/api/v2/spans', hostname: 'z', traceId128: false, sharedSpanContext: false },
  };
  const tracer = new HttpTracer(cfg, new StatScope(store, 'http.q.'), {
    clusters: new ClusterManager(store, log),
    store,
    log,
    node: { id: 'n', serviceCluster: 'gw.ns', localAddress: '' },
  });
  const t = tracer.begin({ headers: ['x-request-id', rid(1)], requestId: rid(1) }, 'h.example.com', performance.now());
  assert.ok(t);
  assert.equal(t.span.kind, 3);
  assert.equal(t.span.traceId.length, 16, 'a 64-bit trace id without trace_id_128bit');
  assert.equal(t.span.name, 'h.example.com', "Zipkin names the span after the host until the route's decorator does");
  const up: string[] = [];
  t.onUpstreamRequest(up, { name: 'c', observabilityName: 'c' }, '10.0.0.1:80', 'HTTP/1.1', performance.now());
  assert.deepEqual(up, ['x-b3-traceid', t.span.traceId, 'x-b3-spanid', t.span.spanId, 'x-b3-sampled', '1']);
});
