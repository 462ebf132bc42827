// Tracing in the HCM, as Envoy does it at a gateway (conn_manager_impl.cc traceRequest, tracer_impl.cc,
// http_tracer_impl.cc finalizeDownstreamSpan / finalizeUpstreamSpan, router upstream_request.cc):
// - every request of an HCM with `tracing` gets a trace reason (sampling.ts), packed into its x-request-id, and one
//   of the http.<prefix>.tracing.* counters;
// - with a tracer, a span per request: a child of the context the request carries (W3C for OpenTelemetry, B3 for
//   Zipkin; the parent's sampled flag then decides), else a new trace sampled as decided. Its name is Envoy's
//   "egress <host>" (gateway listeners are OUTBOUND; Zipkin's: the host), replaced by the route's decorator operation;
// - with spawn_upstream_span (istiod sets it on gateways), each upstream attempt has its own CLIENT child span
//   "router <cluster> egress", whose context goes upstream; without it the request span's does;
// - unsampled spans still propagate (sampled 0) and are never tagged nor exported.
import type { Logger } from 'pino';
import { formatResponseFlags } from '../http/response-flags.ts';
import type { StatScope, StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { TracingConfig } from './config.ts';
import { exporterFor, type SpanExporter, type TracingNode } from './exporter.ts';
import { CLIENT_FORCED, HEALTH_CHECK, NOT_TRACEABLE, SAMPLING, SERVICE_FORCED, isTraced, traceDecision, withTraceReason } from './sampling.ts';
import { KIND_CLIENT, KIND_SERVER, Span, extractB3, extractW3c, injectB3, injectW3c, randomId64, setHeader, type SpanContext } from './span.ts';

/** Microseconds since the epoch at a performance.now() instant. */
const epochUs = (hr: number): number => Math.round((performance.timeOrigin + hr) * 1000);

function header(flat: readonly string[], name: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1];
  return undefined;
}

function hasHeader(flat: readonly string[], name: string): boolean {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return true;
  return false;
}

/** What the stream knows when its request span ends (finalizeDownstreamSpan). */
export interface DownstreamDone {
  /** Request headers as they went upstream (lowercase flat list, no host). */
  headers: readonly string[];
  method: string;
  authority: string;
  /** :path as it went upstream (x-envoy-original-path, when the headers have it, is read first). */
  path: string;
  protocol: string;
  /** The client's IP (the connection's peer). */
  peerAddress: string;
  bytesReceived: number;
  bytesSent: number;
  status: number;
  flags: number;
  cluster: { name: string; observabilityName: string } | undefined;
  responseHeaders: readonly string[] | undefined;
  metadata: ((filter: string, path: readonly string[]) => unknown) | undefined;
  endHr: number;
}

export interface TracingRuntime {
  clusters: ClusterManager;
  store: StatsStore;
  log: Logger;
  node: TracingNode;
}

/** The tracing of one HCM: its config, its tracing.* counters and (with a tracer) the worker's exporter. */
export class HttpTracer {
  readonly cfg: TracingConfig;
  private readonly store: StatsStore;
  private readonly reasonStat: number[];
  private readonly exporter: SpanExporter | undefined;
  readonly node: TracingNode;

  constructor(cfg: TracingConfig, scope: StatScope, rt: TracingRuntime) {
    this.cfg = cfg;
    this.node = rt.node;
    this.store = rt.store;
    const c = (n: string): number => scope.counter(`tracing.${n}`);
    const r: number[] = [];
    r[NOT_TRACEABLE] = c('not_traceable');
    r[HEALTH_CHECK] = c('health_check');
    r[SAMPLING] = c('random_sampling');
    r[SERVICE_FORCED] = c('service_forced');
    r[CLIENT_FORCED] = c('client_enabled');
    this.reasonStat = r;
    this.exporter = cfg.tracer ? exporterFor(cfg.tracer, rt.clusters, rt.store, rt.node, rt.log.child({ component: 'tracing' })) : undefined;
  }

  /**
   * The request's decision, taken once its route is known: the x-request-id in `r.headers` (and `r.requestId`) is
   * rewritten with the trace reason; returns the request's trace (undefined without a tracer or a usable context).
   * Without a tracer (Istio's default: a tracing block, no provider) nothing is allocated unless the id changes.
   */
  begin(r: { headers: string[]; requestId: string }, authority: string, startHr: number): StreamTrace | undefined {
    const cfg = this.cfg;
    const headers = r.headers;
    const reason = traceDecision(cfg, r.requestId, hasHeader(headers, 'x-client-trace-id'), hasHeader(headers, 'x-envoy-force-trace'), Math.random);
    if (cfg.useRequestIdForTraceSampling && cfg.packTraceReason && r.requestId !== '') {
      const rid = withTraceReason(r.requestId, reason);
      if (rid !== r.requestId) {
        setHeader(headers, 'x-request-id', rid);
        r.requestId = rid;
      }
    }
    this.store.inc(this.reasonStat[reason] as number);
    const tracer = cfg.tracer;
    if (!tracer) return undefined;
    const traced = isTraced(reason);
    // getSpanKind: a SERVER span when attempts get their own (the gateway is a hop of its own), else the kind of an
    // OUTBOUND listener's operation (egress: CLIENT).
    const kind = cfg.spawnUpstreamSpan ? KIND_SERVER : KIND_CLIENT;
    let span: Span;
    if (tracer.kind === 'opentelemetry') {
      const parent = extractW3c(headers);
      if (parent === 'invalid') return undefined;
      span = parent
        ? new Span(parent.traceId, randomId64(), parent.spanId, `egress ${authority}`, kind, startHr, parent.sampled === true, parent.tracestate)
        : new Span(randomId64() + randomId64(), randomId64(), '', `egress ${authority}`, kind, startHr, traced, '');
    } else {
      const b3 = extractB3(headers);
      if (b3 === 'invalid') return undefined;
      const sampled = b3.sampled ?? traced;
      const p = b3.parent;
      // shared_span_context false (Istio): the gateway's span is a child of the client's, never the same span.
      span = p
        ? new Span(p.traceId, randomId64(), p.spanId, authority, kind, startHr, sampled, '')
        : new Span(tracer.traceId128 ? randomId64() + randomId64() : randomId64(), randomId64(), '', authority, kind, startHr, sampled, '');
    }
    return new StreamTrace(this, span);
  }

  report(span: Span): void {
    this.exporter?.add(span);
  }
}

function addGrpcRequestTags(span: Span, d: DownstreamDone): void {
  span.setTag('grpc.path', d.path);
  span.setTag('grpc.authority', d.authority);
  const ct = header(d.headers, 'content-type');
  if (ct !== undefined) span.setTag('grpc.content_type', ct);
  const t = header(d.headers, 'grpc-timeout');
  if (t !== undefined) span.setTag('grpc.timeout', t);
}

/** One request's spans. */
export class StreamTrace {
  readonly span: Span;
  private readonly tracer: HttpTracer;
  /** The current attempt's span (spawn_upstream_span) and what it records (finalizeUpstreamSpan). */
  private upstream: Span | undefined;
  private upStatus = 0;
  private upAddress = '';
  private upProtocol = '';
  private upCluster: { name: string; observabilityName: string } | undefined;

  constructor(tracer: HttpTracer, span: Span) {
    this.tracer = tracer;
    this.span = span;
  }

  /** The route's decorator operation names the span (Decorator::apply). */
  setOperation(operation: string): void {
    this.span.name = operation;
  }

  /**
   * An upstream attempt starts (a retry ends the one before): its span (or the request's) is what the upstream
   * headers carry. `address` is the host's ip:port.
   */
  onUpstreamRequest(headers: string[], cluster: { name: string; observabilityName: string }, address: string, protocol: string, startHr: number): void {
    const cfg = this.tracer.cfg;
    let ctx: SpanContext = this.span;
    if (cfg.spawnUpstreamSpan && !this.span.sampled) {
      // Never reported: only the context the upstream gets (the attempt's own span id, not sampled).
      ctx = { traceId: this.span.traceId, spanId: randomId64(), parentId: this.span.spanId, sampled: false, tracestate: this.span.tracestate };
    } else if (cfg.spawnUpstreamSpan) {
      if (this.upstream) this.closeUpstream(0, startHr);
      ctx = this.upstream = this.span.child(`router ${cluster.observabilityName} egress`, KIND_CLIENT, startHr);
      this.upStatus = 0;
      this.upAddress = address;
      this.upProtocol = protocol;
      this.upCluster = cluster;
    }
    if (cfg.tracer?.kind === 'zipkin') injectB3(ctx, headers);
    else injectW3c(ctx, headers);
  }

  /** The current attempt's response status. */
  onUpstreamStatus(status: number): void {
    this.upStatus = status;
  }

  /** The attempt's span ends: with the attempt's status (0 when none came back: error), the stream's flags when last. */
  private closeUpstream(flags: number, endHr: number): void {
    const s = this.upstream;
    if (!s) return;
    this.upstream = undefined;
    if (!s.sampled) return;
    s.setTag('http.protocol', this.upProtocol);
    s.setTag('upstream_address', this.upAddress);
    s.setTag('peer.address', this.upAddress);
    this.commonTags(s, this.upStatus, flags, this.upCluster, undefined, undefined);
    s.startUs = epochUs(s.startHr);
    s.endUs = epochUs(endHr);
    this.tracer.report(s);
  }

  /** setCommonTags: component, cluster, status code, flags, error, custom tags. */
  private commonTags(
    s: Span,
    status: number,
    flags: number,
    cluster: { name: string; observabilityName: string } | undefined,
    headers: readonly string[] | undefined,
    metadata: DownstreamDone['metadata'],
  ): void {
    s.setTag('component', 'proxy');
    if (cluster) {
      s.setTag('upstream_cluster', cluster.name);
      s.setTag('upstream_cluster.name', cluster.observabilityName);
    }
    s.setTag('http.status_code', String(status));
    s.setTag('response_flags', formatResponseFlags(flags));
    if (status === 0 || (status >= 500 && status < 600)) s.setTag('error', 'true');
    for (const t of this.tracer.cfg.customTags) {
      if (t.kind === 'literal') s.setTag(t.tag, t.value);
      else if (t.kind === 'header') {
        const v = headers ? header(headers, t.name) : undefined;
        if (v !== undefined || t.dflt !== '') s.setTag(t.tag, v ?? t.dflt);
      } else {
        const v = metadata?.(t.filter, t.path);
        if (v !== undefined && v !== null) s.setTag(t.tag, typeof v === 'string' ? v : JSON.stringify(v));
        else if (t.dflt !== '') s.setTag(t.tag, t.dflt);
      }
    }
  }

  /** The request ended: the open attempt's span and the request's span are finalized and reported. */
  finish(d: DownstreamDone): void {
    const s = this.span;
    this.closeUpstream(d.flags, d.endHr);
    if (!s.sampled) return;
    // TracerImpl::startSpan's local tags: the node id and its locality zone (none is configured here).
    s.setTag('node_id', this.tracer.node.id);
    s.setTag('zone', '');
    const rid = header(d.headers, 'x-request-id');
    if (rid !== undefined) s.setTag('guid:x-request-id', rid);
    const maxPath = this.tracer.cfg.maxPathTagLength;
    // Http::Utility::buildOriginalUri: the path before a route's rewrite (x-envoy-original-path), truncated.
    const original = header(d.headers, 'x-envoy-original-path') ?? d.path;
    const path = original.length > maxPath ? original.slice(0, maxPath) : original;
    s.setTag('http.url', `${header(d.headers, 'x-forwarded-proto') ?? 'http'}://${d.authority}${path}`);
    s.setTag('http.method', d.method);
    s.setTag('downstream_cluster', header(d.headers, 'x-envoy-downstream-service-cluster') ?? '-');
    s.setTag('user_agent', header(d.headers, 'user-agent') ?? '-');
    s.setTag('http.protocol', d.protocol);
    s.setTag('peer.address', d.peerAddress);
    const ctid = header(d.headers, 'x-client-trace-id');
    if (ctid !== undefined) s.setTag('guid:x-client-trace-id', ctid);
    const ct = header(d.headers, 'content-type');
    const grpc = ct !== undefined && ct.startsWith('application/grpc');
    if (grpc) addGrpcRequestTags(s, d);
    s.setTag('request_size', String(d.bytesReceived));
    s.setTag('response_size', String(d.bytesSent));
    this.commonTags(s, d.status, d.flags, d.cluster, d.headers, d.metadata);
    if (grpc && d.responseHeaders) {
      const gs = header(d.responseHeaders, 'grpc-status');
      if (gs !== undefined) s.setTag('grpc.status_code', gs);
      const gm = header(d.responseHeaders, 'grpc-message');
      if (gm !== undefined) s.setTag('grpc.message', gm);
    }
    s.startUs = epochUs(s.startHr);
    s.endUs = epochUs(d.endHr);
    this.tracer.report(s);
  }
}

/**
 * The node as the tracers report it: its id, its cluster (Istio's bootstrap sets <app>.<namespace>; without one it
 * is derived from the labels as Istio does: app, app.kubernetes.io/name, the canonical name, else the workload), its
 * address.
 */
export function tracingNode(
  node: { workloadName: string; namespace: string; labels: Readonly<Record<string, string>>; id?: string; cluster?: string } | undefined,
  localAddress: string,
): TracingNode {
  const l = node?.labels ?? {};
  const app = l.app ?? l['app.kubernetes.io/name'] ?? l['service.istio.io/canonical-name'] ?? (node?.workloadName || 'istio-proxy');
  return { id: node?.id ?? '', serviceCluster: node?.cluster || (node?.namespace ? `${app}.${node.namespace}` : app), localAddress };
}
