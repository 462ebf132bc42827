// Span export, per worker as Envoy's tracers keep a buffer per worker thread: finished sampled spans are buffered
// and sent to the collector's cluster when min_flush_spans (5) are waiting or every flush_interval_ms (5 s). The
// buffer is bounded and a send never waits on, or fails, a request: a collector that is down or slow costs a
// dropped batch and a counter, nothing else.
import type { Logger } from 'pino';
import { callCluster, type CallResult } from '../extauthz/cluster-call.ts';
import { grpcFrame } from '../extauthz/grpc-client.ts';
import type { StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { TracerSpec } from './config.ts';
import { decodeOtlpResponse, encodeOtlp, encodeZipkin } from './encode.ts';
import type { Span } from './span.ts';

/** Envoy's runtime defaults: tracing.{opentelemetry,zipkin}.min_flush_spans and flush_interval_ms. */
const MIN_FLUSH_SPANS = 5;
const FLUSH_INTERVAL_MS = 5000;
/** At most this many spans wait; more are dropped (a collector that cannot keep up does not grow the heap). */
const MAX_BUFFERED = 8192;
/** At most this many sends in flight per exporter; a flush beyond it drops its batch. */
const MAX_IN_FLIGHT = 4;
/** A send without a configured timeout gives up after this (Envoy's tracing.zipkin.request_timeout default). */
const DEFAULT_TIMEOUT_MS = 5000;

/** Where spans are reported: the proxy's node, as the tracers name it (service name, local address). */
export interface TracingNode {
  /** Envoy's node id: the request span's node_id tag. */
  id: string;
  /** The node's cluster (Istio: <app>.<namespace>): Zipkin's local service name. */
  serviceCluster: string;
  localAddress: string;
}

interface ExporterStats {
  spans_sent: number;
  timer_flushed: number;
  reports_sent: number;
  reports_success: number;
  reports_failed: number;
  reports_dropped: number;
  reports_skipped_no_cluster: number;
}

export class SpanExporter {
  private buffer: Span[] = [];
  private inFlight = 0;
  private readonly stats: ExporterStats;
  private readonly spec: TracerSpec;
  private readonly clusters: ClusterManager;
  private readonly store: StatsStore;
  private readonly node: TracingNode;
  private readonly log: Logger;

  constructor(spec: TracerSpec, clusters: ClusterManager, store: StatsStore, node: TracingNode, log: Logger) {
    this.spec = spec;
    this.clusters = clusters;
    this.store = store;
    this.node = node;
    this.log = log;
    // tracing.opentelemetry.* / tracing.zipkin.*, as Envoy's tracers name their stats.
    const prefix = `tracing.${spec.kind}.`;
    const s = {} as ExporterStats;
    for (const k of [
      'spans_sent',
      'timer_flushed',
      'reports_sent',
      'reports_success',
      'reports_failed',
      'reports_dropped',
      'reports_skipped_no_cluster',
    ] as const)
      s[k] = store.counter(prefix + (spec.kind === 'opentelemetry' && k.startsWith('reports_') ? `${spec.transport}_${k}` : k));
    this.stats = s;
    // Unreferenced: the flush timer never keeps a worker alive; the exporter lives as long as its worker.
    const timer = setInterval(() => {
      store.inc(this.stats.timer_flushed);
      this.flush();
    }, FLUSH_INTERVAL_MS);
    timer.unref();
  }

  /** A finished, sampled span. */
  add(span: Span): void {
    if (this.buffer.length >= MAX_BUFFERED) {
      this.store.inc(this.stats.reports_dropped);
      return;
    }
    this.buffer.push(span);
    if (this.buffer.length >= MIN_FLUSH_SPANS) this.flush();
  }

  flush(): void {
    const spans = this.buffer;
    if (spans.length === 0) return;
    this.buffer = [];
    const spec = this.spec;
    if (!this.clusters.get(spec.cluster)) {
      this.store.inc(this.stats.reports_skipped_no_cluster);
      return;
    }
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.store.inc(this.stats.reports_dropped);
      return;
    }
    this.store.inc(this.stats.spans_sent, spans.length);
    this.inFlight++;
    let body: Buffer;
    let headers: string[];
    let h2 = false;
    const timeoutMs = spec.kind === 'opentelemetry' && spec.timeoutMs > 0 ? spec.timeoutMs : DEFAULT_TIMEOUT_MS;
    if (spec.kind === 'zipkin') {
      body = Buffer.from(encodeZipkin(this.node.serviceCluster, this.node.localAddress, spans));
      headers = ['host', spec.hostname, 'content-type', 'application/json'];
    } else if (spec.transport === 'grpc') {
      body = grpcFrame(encodeOtlp(spec.serviceName, spans));
      headers = ['host', spec.authority, 'content-type', 'application/grpc', 'te', 'trailers'];
      if (spec.timeoutMs > 0) headers.push('grpc-timeout', `${spec.timeoutMs}m`);
      h2 = true;
    } else {
      body = Buffer.from(encodeOtlp(spec.serviceName, spans));
      headers = ['host', spec.authority, 'content-type', 'application/x-protobuf'];
    }
    if (spec.kind === 'opentelemetry') for (const [k, v] of spec.headers) headers.push(k, v);
    this.store.inc(this.stats.reports_sent);
    callCluster(this.clusters, { cluster: spec.cluster, method: 'POST', path: spec.path, headers, body, timeoutMs, h2 }, (r) => {
      this.inFlight--;
      const failure = this.failure(r);
      if (failure === undefined) this.store.inc(this.stats.reports_success);
      else {
        this.store.inc(this.stats.reports_failed);
        this.log.debug({ cluster: spec.cluster, spans: spans.length, reason: failure }, 'span export failed');
      }
    });
  }

  /** Why a send failed, or undefined: a 2xx (gRPC: status 0 in the trailers or headers). */
  private failure(r: CallResult): string | undefined {
    if (!r.ok) return r.reason;
    if (r.status < 200 || r.status >= 300) return `HTTP ${r.status}`;
    if (this.spec.kind === 'opentelemetry' && this.spec.transport === 'grpc') {
      const t = r.trailers['grpc-status'];
      const status = (Array.isArray(t) ? t[0] : t) ?? headerOf(r.headers, 'grpc-status');
      if (status !== '0') return `grpc-status ${status ?? 'missing'}`;
      const partial = r.body.length > 5 ? decodeOtlpResponse(r.body.subarray(5)) : undefined;
      if (partial && partial.rejected > 0) return `collector rejected ${partial.rejected} spans: ${partial.message}`;
    }
    return undefined;
  }
}

function headerOf(flat: readonly string[], name: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (String(flat[i]).toLowerCase() === name) return String(flat[i + 1]);
  return undefined;
}

/** Per data plane (a worker's clusters), per tracer config. */
const exporters = new WeakMap<ClusterManager, Map<string, SpanExporter>>();

/** The worker's exporter for a tracer config: HCMs with the same tracer share one buffer and timer (Envoy's TracerManager). */
export function exporterFor(spec: TracerSpec, clusters: ClusterManager, store: StatsStore, node: TracingNode, log: Logger): SpanExporter {
  let byKey = exporters.get(clusters);
  if (!byKey) exporters.set(clusters, (byKey = new Map<string, SpanExporter>()));
  const key = JSON.stringify(spec);
  let e = byKey.get(key);
  if (!e) byKey.set(key, (e = new SpanExporter(spec, clusters, store, node, log)));
  return e;
}
