// grpc_stats: message counting across chunk boundaries (Envoy's FrameInspector), the cluster stats' names, the
// filter config, and the filter state Istio's stats filter turns into istio_request/response_messages_total.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GrpcFrameCounter, grpcStatPrefix, grpcStatsFilterFactory, parseGrpcStatsConfig, serviceAndMethod, type GrpcStatsConfig } from './grpc-stats.ts';
import type { FilterCallbacks, FilterState, StreamObserver } from '../filter.ts';
import { ACTION_ROUTE, type CompiledRoute } from '../../router/route-config.ts';
import type { Cluster } from '../../upstream/cluster.ts';
import { IstioMetrics, compileStatsConfig, type HttpStreamReport } from '../../stats/istio-metrics.ts';
import { renderPrometheus } from '../../stats/render.ts';
import { StatsStore } from '../../stats/store.ts';
import { ConfigError } from '../../xds/json.ts';

/** A gRPC message on the wire: flag byte, big-endian length, payload. */
function frame(len: number, flags = 0): Buffer {
  const b = Buffer.alloc(5 + len, 0x61);
  b[0] = flags;
  b.writeUInt32BE(len, 1);
  return b;
}

test('frames are counted in one chunk: empty, compressed and large messages', () => {
  const body = Buffer.concat([frame(0), frame(3, 1), frame(70_000), frame(1)]);
  const c = new GrpcFrameCounter(false);
  assert.equal(c.inspect(body), 4);
  assert.equal(c.count, 4);
  // A length prefix whose top byte is set (a message over 16 MiB) is read as unsigned.
  const big = Buffer.from([0, 0x80, 0, 0, 0]);
  const d = new GrpcFrameCounter(false);
  assert.equal(d.inspect(big), 1);
  assert.equal(d.inspect(Buffer.alloc(1000)), 0);
});

test('a body split at every byte boundary, and byte by byte, counts each message once, when its flag byte arrives', () => {
  const frames = [frame(2), frame(0, 1), frame(300), frame(5)];
  const body = Buffer.concat(frames);
  const starts = new Set<number>();
  let at = 0;
  for (const f of frames) {
    starts.add(at);
    at += f.length;
  }
  for (let cut = 0; cut <= body.length; cut++) {
    const c = new GrpcFrameCounter(false);
    const a = c.inspect(body.subarray(0, cut));
    const b = c.inspect(body.subarray(cut));
    assert.equal(a, [...starts].filter((s) => s < cut).length, `cut at ${cut}`);
    assert.equal(a + b, 4, `cut at ${cut}`);
  }
  const c = new GrpcFrameCounter(false);
  for (let i = 0; i < body.length; i++) assert.equal(c.inspect(body.subarray(i, i + 1)), starts.has(i) ? 1 : 0, `byte ${i}`);
  assert.equal(c.count, 4);
});

test('the response counter stops at a Connect end-of-stream frame (flag 0x02); the request counter counts any flag', () => {
  const body = Buffer.concat([frame(2), frame(4, 2), frame(1)]);
  const res = new GrpcFrameCounter(true);
  assert.equal(res.inspect(body), 1);
  assert.equal(res.inspect(frame(1)), 0);
  const req = new GrpcFrameCounter(false);
  assert.equal(req.inspect(body), 3);
});

test('service and method from :path, as Grpc::Common::resolveServiceAndMethod', () => {
  const cases: [string, [string, string] | undefined][] = [
    ['/helloworld.Greeter/SayHello', ['helloworld.Greeter', 'SayHello']],
    ['/helloworld.Greeter/SayHello?x=1', ['helloworld.Greeter', 'SayHello']],
    ['//a//b/', ['a', 'b']],
    ['/a', undefined],
    ['/a/b/c', undefined],
    ['/', undefined],
  ];
  for (const [path, want] of cases) assert.deepEqual(serviceAndMethod(path), want, path);
});

test("stat prefixes: istiod's config gives grpc. for every call; all methods or the allowlist add service and method", () => {
  const base: GrpcStatsConfig = { emitFilterState: true, allMethods: false, replaceDots: false, allowlist: undefined };
  assert.equal(grpcStatPrefix(base, '/helloworld.Greeter/SayHello'), 'grpc.');
  assert.equal(grpcStatPrefix(base, '/healthz'), undefined);
  assert.equal(grpcStatPrefix({ ...base, allMethods: true }, '/helloworld.Greeter/SayHello'), 'grpc.helloworld.Greeter.SayHello.');
  assert.equal(grpcStatPrefix({ ...base, allMethods: true, replaceDots: true }, '/helloworld.Greeter/SayHello'), 'grpc.helloworld_Greeter.SayHello.');
  const listed = { ...base, allowlist: new Set(['helloworld.Greeter/SayHello']) };
  assert.equal(grpcStatPrefix(listed, '/helloworld.Greeter/SayHello'), 'grpc.helloworld.Greeter.SayHello.');
  assert.equal(grpcStatPrefix(listed, '/helloworld.Greeter/Other'), 'grpc.');
});

test("FilterConfig: istiod's, an allowlist, and what is refused", () => {
  assert.deepEqual(parseGrpcStatsConfig({ emit_filter_state: true, stats_for_all_methods: false }, 'f'), {
    emitFilterState: true,
    allMethods: false,
    replaceDots: false,
    allowlist: undefined,
  });
  const a = parseGrpcStatsConfig({ individual_method_stats_allowlist: { services: [{ name: 's.S', method_names: ['A', 'B'] }] } }, 'f');
  assert.deepEqual([...(a.allowlist ?? [])], ['s.S/A', 's.S/B']);
  assert.throws(
    () => parseGrpcStatsConfig({ enable_upstream_stats: true }, 'f'),
    (e: Error) => e instanceof ConfigError && /enable_upstream_stats/.test(e.message),
  );
  assert.throws(() => parseGrpcStatsConfig({ emit_filter_state: true, bogus: 1 } as never, 'f'), /field 'bogus' is not supported/);
});

/** A gRPC stream through the filter with a fake stream: the cluster counters it charges by name, its filter state. */
function run(o: { grpc?: boolean; path?: string; route?: boolean; emit?: boolean }): {
  obs: StreamObserver | undefined;
  charged: Map<string, number>;
  state: FilterState;
} {
  const charged = new Map<string, number>();
  const names: string[] = [];
  const store = new StatsStore();
  const cluster = {
    store,
    counter: (n: string) => {
      names.push(n);
      return names.length - 1;
    },
  };
  store.inc = (idx: number, by = 1) => {
    const n = names[idx] as string;
    charged.set(n, (charged.get(n) ?? 0) + by);
  };
  const state: FilterState = {};
  let obs: StreamObserver | undefined;
  const cb = {
    grpc: o.grpc ?? true,
    path: o.path ?? '/helloworld.Greeter/SayHello',
    route: () => (o.route === false ? undefined : ({ action: ACTION_ROUTE, cluster: 'c' } as unknown as CompiledRoute)),
    clusterInfo: () => cluster as unknown as Cluster,
    observe: (x: StreamObserver) => {
      obs = x;
    },
    setFilterState: (k: keyof FilterState, v: NonNullable<FilterState[keyof FilterState]>) => {
      state[k] = v;
    },
  } as unknown as FilterCallbacks;
  const config: GrpcStatsConfig = { emitFilterState: o.emit ?? true, allMethods: false, replaceDots: false, allowlist: undefined };
  grpcStatsFilterFactory(config).createFilter().decodeHeaders(cb);
  return { obs, charged, state };
}

test("a client-streaming call: Envoy's cluster counters by name and the filter state, updated per chunk", () => {
  const { obs, charged, state } = run({});
  assert.ok(obs);
  const body = Buffer.concat([frame(3), frame(3), frame(3)]);
  obs.decodeData(body.subarray(0, 9));
  assert.deepEqual(state['envoy.filters.http.grpc_stats'], { requestMessageCount: 2, responseMessageCount: 0 });
  obs.decodeData(body.subarray(9));
  obs.encodeHeaders(200, ['content-type', 'application/grpc+proto']);
  obs.encodeData(frame(10));
  obs.encodeTrailers({ 'grpc-status': '0', 'grpc-message': '' });
  assert.deepEqual(state['envoy.filters.http.grpc_stats'], { requestMessageCount: 3, responseMessageCount: 1 });
  assert.deepEqual(Object.fromEntries(charged), {
    'grpc.request_message_count': 3,
    'grpc.response_message_count': 1,
    'grpc.0': 1,
    'grpc.success': 1,
    'grpc.total': 1,
  });
});

test('a trailers-only answer charges its status from the headers; a non-gRPC or non-200 response has no messages counted', () => {
  const a = run({});
  a.obs?.decodeData(frame(1));
  a.obs?.encodeHeaders(200, ['content-type', 'application/grpc', 'grpc-status', '14', 'grpc-message', 'no healthy upstream']);
  assert.deepEqual(Object.fromEntries(a.charged), { 'grpc.request_message_count': 1, 'grpc.14': 1, 'grpc.failure': 1, 'grpc.total': 1 });
  const b = run({});
  b.obs?.encodeHeaders(503, ['content-type', 'application/grpc']);
  b.obs?.encodeData(frame(1));
  b.obs?.encodeHeaders(200, ['content-type', 'application/grpc-web']);
  b.obs?.encodeData(frame(1));
  assert.equal(b.state['envoy.filters.http.grpc_stats'], undefined);
  assert.equal(b.charged.size, 0);
});

test('not tracked (no route, or a path that names no method): no cluster stats, the filter state still kept; not gRPC: not observed', () => {
  for (const o of [{ route: false }, { path: '/healthz' }]) {
    const r = run(o);
    r.obs?.decodeData(frame(1));
    assert.equal(r.charged.size, 0);
    assert.deepEqual(r.state['envoy.filters.http.grpc_stats'], { requestMessageCount: 1, responseMessageCount: 0 });
  }
  assert.equal(run({ grpc: false }).obs, undefined);
  const quiet = run({ emit: false });
  quiet.obs?.decodeData(frame(1));
  assert.equal(quiet.state['envoy.filters.http.grpc_stats'], undefined);
  assert.equal(quiet.charged.get('grpc.request_message_count'), 1);
});

const NODE = {
  workloadName: 'istio-ingressgateway',
  namespace: 'istio-system',
  labels: { app: 'istio-ingressgateway' },
  clusterId: 'Kubernetes',
  istioVersion: '',
};

const REPORT: HttpStreamReport = {
  clusterName: 'outbound|50051||greeter.default.svc.cluster.local',
  service: { host: 'greeter.default.svc.cluster.local', name: 'greeter' },
  workload: 'greeter;default;greeter;v1;Kubernetes',
  routeName: '',
  authority: 'greeter.example.com',
  responseCode: 200,
  attributes: () => ({
    request: { method: 'POST', path: '/helloworld.Greeter/SayHello', host: 'greeter.example.com', headers: { 'x-tenant': 'blue' }, size: 100n },
    response: { code: 200n },
  }),
  grpc: true,
  grpcStatus: 0,
  responseFlags: '-',
  durationMs: 5,
  requestBytes: 100,
  responseBytes: 100,
};

function promLines(store: StatsStore, metric: string): string[] {
  return renderPrometheus(store.snapshot())
    .split('\n')
    .filter((l) => l.startsWith(`${metric}{`));
}

test('istio_*_messages_total: the counts of the filter state, with the reporter and peer tags only, summed per stream', () => {
  const store = new StatsStore();
  const m = new IstioMetrics(store, NODE, compileStatsConfig({ disableHostHeaderFallback: true, tcpReportingMs: 5000, metrics: [] }));
  m.recordHttp({ ...REPORT, grpcMessages: { requestMessageCount: 3, responseMessageCount: 1 } });
  m.recordHttp({ ...REPORT, grpcMessages: { requestMessageCount: 1, responseMessageCount: 0 } });
  const peer =
    'reporter="source",source_workload="istio-ingressgateway",source_canonical_service="",source_canonical_revision="",' +
    'source_workload_namespace="istio-system",source_principal="unknown",source_app="istio-ingressgateway",source_version="",' +
    'source_cluster="Kubernetes",destination_workload="greeter",destination_workload_namespace="default",destination_principal="unknown",' +
    'destination_app="unknown",destination_version="unknown",destination_service="greeter.default.svc.cluster.local",' +
    'destination_canonical_service="greeter",destination_canonical_revision="v1",destination_service_name="greeter",' +
    'destination_service_namespace="default",destination_cluster="Kubernetes"';
  assert.deepEqual(promLines(store, 'istio_request_messages_total'), [`istio_request_messages_total{${peer}} 4`]);
  assert.deepEqual(promLines(store, 'istio_response_messages_total'), [`istio_response_messages_total{${peer}} 1`]);
  // A stream without the filter state (no grpc_stats, or no message) and an HTTP stream report no messages.
  const other = new StatsStore();
  const m2 = new IstioMetrics(other, NODE, compileStatsConfig({ disableHostHeaderFallback: true, tcpReportingMs: 5000, metrics: [] }));
  m2.recordHttp(REPORT);
  m2.recordHttp({ ...REPORT, grpc: false, grpcMessages: { requestMessageCount: 1, responseMessageCount: 1 } });
  assert.deepEqual(promLines(other, 'istio_request_messages_total'), []);
});

test('messages metrics follow the overrides; header expressions evaluate to unknown there (no request headers), as in Istio', () => {
  const store = new StatsStore();
  const config = compileStatsConfig({
    disableHostHeaderFallback: true,
    tcpReportingMs: 5000,
    metrics: [
      { name: '', drop: false, tagsToRemove: ['source_principal'], dimensions: { tenant: "request.headers['x-tenant']", code: 'response.code' } },
      { name: 'response_messages_total', drop: true, tagsToRemove: [], dimensions: {} },
    ],
  });
  const m = new IstioMetrics(store, NODE, config);
  m.recordHttp({ ...REPORT, grpcMessages: { requestMessageCount: 2, responseMessageCount: 2 } });
  const [line] = promLines(store, 'istio_request_messages_total');
  assert.ok(line && !line.includes('source_principal') && line.endsWith(',code="200",tenant="unknown"} 2'), line);
  assert.deepEqual(promLines(store, 'istio_response_messages_total'), []);
  assert.ok(promLines(store, 'istio_requests_total')[0]?.includes('tenant="blue"'));
});
