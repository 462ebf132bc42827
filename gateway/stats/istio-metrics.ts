// Istio's standard metrics as its stats filter (istio/proxy source/extensions/filters/http/istio_stats) reports
// them from a gateway: a gateway listener is OUTBOUND, so the filter reports as the client side
// (`reporter="source"`). The source is the gateway itself (its node metadata); the destination service comes from
// the cluster's Istio metadata (`istio.services[0]`) and the destination workload from the chosen endpoint's
// (`istio.workload`: `name;namespace;canonical;revision;cluster`), since a gateway exchanges no peer metadata with
// pods that have no sidecar. Values that are not known are `unknown` (a canonical revision `latest`), exactly as
// the filter writes them.
//
// Stats are tagged (StatsStore.taggedStat): one series per distinct tag set, kept for the life of the process, as
// Envoy keeps them for the life of the listener's scope. Label sets are bounded by what the tags can take: the
// gateway's clusters x their endpoints' workloads x response codes x flags x gRPC statuses.
import { httpToGrpcStatus } from '../upstream/grpc-status.ts';
import { parse } from '@marcbachmann/cel-js';
import type { StatsStore, StatTags } from './store.ts';
import { COUNTER, GAUGE, HISTOGRAM } from './store.ts';
import { ISTIO_CUSTOM_NAMESPACE } from './render.ts';
import type { IstioService } from '../upstream/cluster.ts';

/** The gateway's own identity, from its node metadata (NAMESPACE, WORKLOAD_NAME, LABELS, CLUSTER_ID, ISTIO_VERSION). */
export interface LocalNode {
  workloadName: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  clusterId: string;
  istioVersion: string;
  /** The node's id and cluster (Envoy's local_info: the tracers' node_id tag and service name). */
  id?: string;
  cluster?: string;
}

/** The node fields istio_stats reads, from Envoy's node metadata (what the proxy sends in its xDS requests). */
export function localNodeFromMetadata(metadata: Readonly<Record<string, unknown>> | undefined): LocalNode {
  const m = metadata ?? {};
  const str = (k: string): string => (typeof m[k] === 'string' ? m[k] : '');
  const labels: Record<string, string> = {};
  const raw = m.LABELS;
  if (typeof raw === 'object' && raw !== null) for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') labels[k] = v;
  return { workloadName: str('WORKLOAD_NAME'), namespace: str('NAMESPACE'), labels, clusterId: str('CLUSTER_ID'), istioVersion: str('ISTIO_VERSION') };
}

/** The metrics the filter defines (the Telemetry API's names without `istio_`). */
const STANDARD_METRICS = [
  'requests_total',
  'request_duration_milliseconds',
  'request_bytes',
  'response_bytes',
  'request_messages_total',
  'response_messages_total',
  'tcp_connections_opened_total',
  'tcp_connections_closed_total',
  'tcp_sent_bytes_total',
  'tcp_received_bytes_total',
] as const;
type StandardMetric = (typeof STANDARD_METRICS)[number];

const STANDARD_TAGS = new Set([
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
  'response_code',
  'grpc_response_status',
]);

/**
 * What a tag expression reads: Envoy's CEL attributes of the request or connection (access-log/cel-filter.ts
 * celAttributes), built only when an expression is evaluated.
 */
export interface ExpressionInput {
  attributes(): Record<string, unknown>;
}

/** The attributes without those Envoy reads from the request headers (size, time and duration stay). */
function withoutRequestHeaders(a: Record<string, unknown>): Record<string, unknown> {
  const req = a.request as Record<string, unknown> | undefined;
  if (!req) return a;
  const { size } = req;
  return { ...a, request: size === undefined ? {} : { size } };
}

/** A tag's value: undefined when the expression fails (Envoy then writes `unknown`). */
type Expression = (i: ExpressionInput) => string | undefined;

/** Filters::Common::Expr::print for the values a tag takes: strings as they are, numbers and booleans as text. */
function printCel(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint' || typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return undefined;
}

/** A tag expression (CEL, parsed once per config), or undefined when it does not parse. */
function compileExpression(expr: string): Expression | undefined {
  let evaluate: ReturnType<typeof parse>;
  try {
    evaluate = parse(expr);
  } catch {
    return undefined;
  }
  return (i) => {
    try {
      return printCel(evaluate(i.attributes()));
    } catch {
      return undefined;
    }
  };
}

/** stats.PluginConfig as the proxy applies it. */
export interface IstioStatsConfig {
  disableHostHeaderFallback: boolean;
  /** tcp_reporting_duration (default 5 s): how often an open TCP connection's counters are reported. */
  tcpReportingMs: number;
  /** Metrics not reported (MetricConfig.drop). */
  drop: ReadonlySet<string>;
  /** Per metric: standard tags removed (no value) or given by an expression; then tags added, in order. */
  overrides: ReadonlyMap<string, { replace: ReadonlyMap<string, Expression | null>; add: readonly (readonly [string, Expression])[] }>;
  /** Expressions that do not parse (logged once when the config is built). */
  unsupported: readonly string[];
}

/** Raw MetricConfig entries (proto3 JSON) into the per-metric overrides istio_stats builds (Config's constructor). */
export function compileStatsConfig(c: {
  disableHostHeaderFallback: boolean;
  tcpReportingMs: number;
  metrics: readonly { name: string; drop: boolean; tagsToRemove: readonly string[]; dimensions: Readonly<Record<string, string>> }[];
}): IstioStatsConfig {
  const drop = new Set<string>();
  const overrides = new Map<string, { replace: Map<string, Expression | null>; add: [string, Expression][] }>();
  const unsupported: string[] = [];
  const target = (m: string): { replace: Map<string, Expression | null>; add: [string, Expression][] } => {
    let o = overrides.get(m);
    if (!o) overrides.set(m, (o = { replace: new Map(), add: [] }));
    return o;
  };
  const metricsOf = (name: string): readonly string[] =>
    name === '' ? STANDARD_METRICS : (STANDARD_METRICS as readonly string[]).includes(name) ? [name] : [];
  for (const m of c.metrics) {
    if (m.drop) {
      if ((STANDARD_METRICS as readonly string[]).includes(m.name)) drop.add(m.name);
      continue;
    }
    for (const tag of m.tagsToRemove) {
      if (!STANDARD_TAGS.has(tag)) continue;
      for (const metric of metricsOf(m.name)) target(metric).replace.set(tag, null);
    }
    // The filter adds dimensions in tag-name order. An expression that does not parse drops a standard tag and
    // adds nothing for a new one (Config's constructor: an override without an expression id).
    for (const tag of Object.keys(m.dimensions).sort()) {
      const expr = m.dimensions[tag] ?? '';
      const compiled = compileExpression(expr);
      if (!compiled) unsupported.push(expr);
      for (const metric of metricsOf(m.name)) {
        const o = target(metric);
        if (STANDARD_TAGS.has(tag)) o.replace.set(tag, compiled ?? null);
        else if (compiled) o.add.push([tag, compiled]);
      }
    }
  }
  return { disableHostHeaderFallback: c.disableHostHeaderFallback, tcpReportingMs: c.tcpReportingMs, drop, overrides, unsupported };
}

const UNKNOWN = 'unknown';

/** convertEndpointMetadata: the five fields of an endpoint's `istio.workload`, undefined unless there are five. */
function endpointPeer(
  workload: string,
): { workload: string; namespace: string; canonicalName: string; canonicalRevision: string; cluster: string } | undefined {
  if (workload === '') return undefined;
  const p = workload.split(';');
  if (p.length !== 5) return undefined;
  return { workload: p[0] ?? '', namespace: p[1] ?? '', canonicalName: p[2] ?? '', canonicalRevision: p[3] ?? '', cluster: p[4] ?? '' };
}

/** What the filter knows about where a request or connection went. */
export interface Destination {
  /** The upstream cluster's name ('' when none was chosen: no route, a direct response). */
  clusterName: string;
  service: IstioService | undefined;
  /** The chosen endpoint's Istio metadata ('' when none). */
  workload: string;
  routeName: string;
  /** The Host header (the destination when the config allows the fallback). */
  authority: string;
}

/** grpc_stats' filter state (Envoy's GrpcStatsObject): the gRPC messages of a stream counted so far. */
export interface GrpcMessageCounts {
  requestMessageCount: number;
  responseMessageCount: number;
}

/** One HTTP stream as the filter's log() sees it. */
export interface HttpStreamReport extends Destination, ExpressionInput {
  grpc: boolean;
  /** The response's grpc-status (trailers, else headers), or undefined. */
  grpcStatus: number | undefined;
  /** response flags, short form (`-` when none). */
  responseFlags: string;
  durationMs: number;
  requestBytes: number;
  responseBytes: number;
  /** The HTTP status sent (0 when none was). */
  responseCode: number;
  /** grpc_stats' filter state, when the HCM has the filter and it counted a message of this stream. */
  grpcMessages?: GrpcMessageCounts | undefined;
}

interface HttpHandles {
  requests: number;
  duration: number;
  requestBytes: number;
  responseBytes: number;
}

interface MessageHandles {
  request: number;
  response: number;
}

interface TcpHandles {
  opened: number;
  closed: number;
  sent: number;
  received: number;
}

/**
 * One thread's Istio metrics for one filter config: the label values, the tagged stats they map to (cached by
 * label set), the records. Built per HTTP connection manager or TCP chain that carries the filter.
 */
export class IstioMetrics {
  private readonly store: StatsStore;
  private readonly node: LocalNode;
  readonly config: IstioStatsConfig;
  private readonly source: (readonly [string, string])[];
  private readonly httpCache = new Map<string, HttpHandles>();
  private readonly messageCache = new Map<string, MessageHandles>();
  private readonly tcpCache = new Map<string, TcpHandles>();
  private readonly byName = new Map<string, number>();

  constructor(store: StatsStore, node: LocalNode, config: IstioStatsConfig) {
    this.store = store;
    this.node = node;
    this.config = config;
    const l = node.labels;
    this.source = [
      ['reporter', 'source'],
      ['source_workload', node.workloadName],
      ['source_canonical_service', l['service.istio.io/canonical-name'] ?? ''],
      ['source_canonical_revision', l['service.istio.io/canonical-revision'] ?? ''],
      ['source_workload_namespace', node.namespace],
      ['source_principal', UNKNOWN],
      ['source_app', l.app ?? ''],
      ['source_version', l.version ?? ''],
      ['source_cluster', node.clusterId],
    ];
    // recordVersion: istio_build{component="proxy",tag="<ISTIO_VERSION>"} 1.
    const version = node.istioVersion || UNKNOWN;
    const build: StatTags = {
      name: `${ISTIO_CUSTOM_NAMESPACE}istio_build`,
      tags: [
        ['component', 'proxy'],
        ['tag', version],
      ],
    };
    store.set(store.taggedStat(fullName(build), GAUGE, build), 1);
  }

  /** populatePeerInfo for the client side: the 19 peer tags after `reporter`. */
  private peerTags(d: Destination): (readonly [string, string])[] {
    const peer = endpointPeer(d.workload);
    let serviceHost = '';
    let serviceName = '';
    if (!this.config.disableHostHeaderFallback) serviceHost = serviceName = d.authority;
    if (d.routeName === 'block_all') serviceName = 'BlackHoleCluster';
    else if (d.routeName === 'allow_any') serviceName = 'PassthroughCluster';
    else if (d.clusterName === 'BlackHoleCluster' || d.clusterName === 'PassthroughCluster' || d.clusterName.startsWith('InboundPassthroughCluster'))
      serviceName = d.clusterName;
    else if (d.service) {
      serviceHost = d.service.host;
      serviceName = d.service.name;
    }
    const ns = peer?.namespace || UNKNOWN;
    return [
      ...this.source,
      ['destination_workload', peer?.workload || UNKNOWN],
      ['destination_workload_namespace', ns],
      ['destination_principal', UNKNOWN],
      ['destination_app', UNKNOWN],
      ['destination_version', UNKNOWN],
      ['destination_service', serviceHost || UNKNOWN],
      ['destination_canonical_service', peer?.canonicalName || UNKNOWN],
      ['destination_canonical_revision', peer?.canonicalRevision || 'latest'],
      ['destination_service_name', serviceName || UNKNOWN],
      ['destination_service_namespace', ns],
      ['destination_cluster', peer?.cluster || UNKNOWN],
    ];
  }

  /** A metric's stat for a tag set after the config's overrides; -1 when the metric is dropped. */
  private stat(
    metric: StandardMetric,
    kind: typeof COUNTER | typeof HISTOGRAM,
    tags: readonly (readonly [string, string])[],
    input: ExpressionInput | undefined,
  ): number {
    if (this.config.drop.has(metric)) return -1;
    const o = this.config.overrides.get(metric);
    let out = tags;
    if (o) {
      const next: [string, string][] = [];
      for (const [k, v] of tags) {
        if (!o.replace.has(k)) next.push([k, v]);
        else {
          const e = o.replace.get(k);
          if (e) next.push([k, (input && e(input)) ?? UNKNOWN]);
        }
      }
      for (const [k, e] of o.add) next.push([k, (input && e(input)) ?? UNKNOWN]);
      out = next;
    }
    const t: StatTags = { name: `${ISTIO_CUSTOM_NAMESPACE}istio_${metric}`, tags: out };
    // Stats are acquired once per name (with tag expressions the label set is only known per request).
    const name = fullName(t);
    let idx = this.byName.get(name);
    if (idx === undefined) this.byName.set(name, (idx = this.store.taggedStat(name, kind, t)));
    return idx;
  }

  /** log(): one finished HTTP stream. */
  recordHttp(r: HttpStreamReport): void {
    if (r.grpc && r.grpcMessages) this.recordMessages(r, r.grpcMessages);
    const grpcStatus = r.grpc ? String(r.grpcStatus ?? httpToGrpcStatus(r.responseCode)) : '';
    const withExpressions = this.config.overrides.size > 0;
    const key = withExpressions
      ? undefined
      : `${r.clusterName}\0${r.workload}\0${r.routeName}\0${this.config.disableHostHeaderFallback ? '' : r.authority}\0${r.grpc ? 1 : 0}\0${r.responseCode}\0${grpcStatus}\0${r.responseFlags}`;
    let h = key === undefined ? undefined : this.httpCache.get(key);
    if (!h) {
      const tags: (readonly [string, string])[] = [
        ...this.peerTags(r),
        ['request_protocol', r.grpc ? 'grpc' : 'http'],
        ['response_code', String(r.responseCode)],
        ['grpc_response_status', grpcStatus],
        ['response_flags', r.responseFlags],
        ['connection_security_policy', UNKNOWN],
      ];
      h = {
        requests: this.stat('requests_total', COUNTER, tags, r),
        duration: this.stat('request_duration_milliseconds', HISTOGRAM, tags, r),
        requestBytes: this.stat('request_bytes', HISTOGRAM, tags, r),
        responseBytes: this.stat('response_bytes', HISTOGRAM, tags, r),
      };
      if (key !== undefined) this.httpCache.set(key, h);
    }
    const st = this.store;
    if (h.requests >= 0) st.inc(h.requests);
    if (h.duration >= 0) st.record(h.duration, r.durationMs);
    if (h.requestBytes >= 0) st.record(h.requestBytes, r.requestBytes);
    if (h.responseBytes >= 0) st.record(h.responseBytes, r.responseBytes);
  }

  /**
   * reportHelper(end_stream) for a gRPC stream: the messages grpc_stats counted, tagged with the reporter and the
   * peer tags only (the filter reports them before it adds request_protocol, response_code and the rest), the
   * dimension expressions evaluated without the request headers. Istio reports the deltas every
   * tcp_reporting_duration only once the upstream peer's metadata was exchanged (x-envoy-peer-metadata from a
   * sidecar); a gateway in front of pods without sidecars exchanges none, so the counts are reported once, when
   * the stream ends: here.
   */
  private recordMessages(r: HttpStreamReport, m: GrpcMessageCounts): void {
    const withExpressions = this.config.overrides.size > 0;
    const key = withExpressions ? undefined : `${r.clusterName}\0${r.workload}\0${r.routeName}\0${this.config.disableHostHeaderFallback ? '' : r.authority}`;
    let h = key === undefined ? undefined : this.messageCache.get(key);
    if (!h) {
      const tags = this.peerTags(r);
      // Evaluated as istio_stats evaluates them for these counters: on the stream info, without the request headers.
      const input: ExpressionInput = { attributes: () => withoutRequestHeaders(r.attributes()) };
      h = {
        request: this.stat('request_messages_total', COUNTER, tags, input),
        response: this.stat('response_messages_total', COUNTER, tags, input),
      };
      if (key !== undefined) this.messageCache.set(key, h);
    }
    // Both series exist from the first report on, zero or not (Envoy's counterFromStatNames(...).add(n)).
    if (h.request >= 0) this.store.inc(h.request, m.requestMessageCount);
    if (h.response >= 0) this.store.inc(h.response, m.responseMessageCount);
  }

  /**
   * The TCP stats of one connection, tagged as when they were first reported (the first report fixes the tags,
   * response flags included, as the filter's tag vector is built once).
   */
  tcpHandles(d: Destination, responseFlags: string, input?: ExpressionInput): TcpHandles {
    const key = `${d.clusterName}\0${d.workload}\0${responseFlags}`;
    let h = this.tcpCache.get(key);
    if (!h) {
      const tags: (readonly [string, string])[] = [
        ...this.peerTags(d),
        ['request_protocol', 'tcp'],
        ['response_flags', responseFlags],
        ['connection_security_policy', UNKNOWN],
      ];
      h = {
        opened: this.stat('tcp_connections_opened_total', COUNTER, tags, input),
        closed: this.stat('tcp_connections_closed_total', COUNTER, tags, input),
        sent: this.stat('tcp_sent_bytes_total', COUNTER, tags, input),
        received: this.stat('tcp_received_bytes_total', COUNTER, tags, input),
      };
      this.tcpCache.set(key, h);
    }
    return h;
  }

  add(idx: number, by: number): void {
    if (idx >= 0 && by > 0) this.store.inc(idx, by);
  }
}

/** Envoy's full name of a tagged stat: the name, then `.tag.value` for each tag. */
function fullName(t: StatTags): string {
  let s = t.name;
  for (const [k, v] of t.tags) s += `.${k}.${v}`;
  return s;
}
