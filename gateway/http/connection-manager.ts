// One HTTP connection manager (an HCM filter of a listener's filter chain): its validated settings, the
// route configuration it reads per request (RDS updates swap `routes.current`), and its stats under
// `http.<stat_prefix>.`. Requests are handled by ActiveStream.
import type { Logger } from 'pino';
import type { CompiledRouteConfig } from '../router/route-config.ts';
import { StatScope, type StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { AccessLogger, AccessLogSinks } from '../access-log/text-format.ts';
import type { HcmSpec } from './hcm-config.ts';
import type { SecretStore } from '../tls/secrets.ts';
import type { FilterFactoryContext, HttpFilterFactory } from './filter.ts';
import type { LocalNode } from '../stats/istio-metrics.ts';
import { buildFilterFactories } from './filter-chain.ts';
import { HttpTracer, tracingNode } from '../tracing/http-tracer.ts';

export interface RouteProvider {
  name: string;
  current: CompiledRouteConfig | undefined;
}

/** What every HCM shares: the proxy-wide runtime. */
export interface ProxyRuntime {
  store: StatsStore;
  clusters: ClusterManager;
  log: Logger;
  accessLog: AccessLogger | undefined;
  /** The files of the access loggers xDS configures (HCM, tcp_proxy and listener access_log). */
  accessLogSinks: AccessLogSinks;
  /** Envoy's own address: appended to x-forwarded-for when the peer is loopback. */
  localAddress: string;
  /** SDS and file certificates (TLS filter chains, upstream TLS). */
  secrets?: SecretStore;
  /** The gateway's identity from its node metadata (Istio's stats report it as the source). */
  node?: LocalNode | undefined;
}

export interface HcmStats {
  downstream_cx_total: number;
  downstream_cx_active: number;
  downstream_cx_http1_total: number;
  downstream_cx_http1_active: number;
  downstream_cx_http2_total: number;
  downstream_cx_http2_active: number;
  downstream_cx_destroy: number;
  downstream_cx_drain_close: number;
  downstream_cx_protocol_error: number;
  downstream_rq_total: number;
  downstream_rq_http1_total: number;
  downstream_rq_http2_total: number;
  downstream_rq_active: number;
  downstream_rq_completed: number;
  downstream_rq_1xx: number;
  downstream_rq_2xx: number;
  downstream_rq_3xx: number;
  downstream_rq_4xx: number;
  downstream_rq_5xx: number;
  downstream_rq_non_relative_path: number;
  downstream_rq_failed_path_normalization: number;
  downstream_rq_rx_reset: number;
  downstream_rq_response_before_rq_complete: number;
  downstream_rq_tx_reset: number;
  downstream_rq_ws_on_non_ws_route: number;
  downstream_rq_max_duration_reached: number;
  no_route: number;
  no_cluster: number;
  rq_total: number;
  rq_direct_response: number;
  rq_redirect: number;
  rq_reset_after_downstream_response_started: number;
  downstream_cx_length_ms: number;
  downstream_rq_time: number;
}

const COUNTERS: (keyof HcmStats)[] = [
  'downstream_cx_total',
  'downstream_cx_http1_total',
  'downstream_cx_http2_total',
  'downstream_cx_destroy',
  'downstream_cx_drain_close',
  'downstream_cx_protocol_error',
  'downstream_rq_total',
  'downstream_rq_http1_total',
  'downstream_rq_http2_total',
  'downstream_rq_completed',
  'downstream_rq_1xx',
  'downstream_rq_2xx',
  'downstream_rq_3xx',
  'downstream_rq_4xx',
  'downstream_rq_5xx',
  'downstream_rq_non_relative_path',
  'downstream_rq_failed_path_normalization',
  'downstream_rq_rx_reset',
  'downstream_rq_response_before_rq_complete',
  'downstream_rq_tx_reset',
  'downstream_rq_ws_on_non_ws_route',
  'downstream_rq_max_duration_reached',
  'no_route',
  'no_cluster',
  'rq_total',
  'rq_direct_response',
  'rq_redirect',
  'rq_reset_after_downstream_response_started',
];
const GAUGES: (keyof HcmStats)[] = ['downstream_cx_active', 'downstream_cx_http1_active', 'downstream_cx_http2_active', 'downstream_rq_active'];
const HISTOGRAMS: (keyof HcmStats)[] = ['downstream_cx_length_ms', 'downstream_rq_time'];

export class HttpConnectionManager {
  readonly spec: HcmSpec;
  /** One factory per HTTP filter before the router, in chain order. */
  readonly filters: HttpFilterFactory[];
  /** The filters that report every finished stream (Istio's stats). */
  readonly streamCompleteHandlers: HttpFilterFactory[];
  readonly routes: RouteProvider;
  /** The HCM's tracing (sampling, tracing.* stats, spans); undefined without `tracing`. */
  readonly tracer: HttpTracer | undefined;
  readonly runtime: ProxyRuntime;
  readonly stats: HcmStats;
  readonly store: StatsStore;
  /** Set when the listener drains: responses carry `connection: close` (Envoy drain sequence, HTTP/1). */
  draining = false;
  /** Listener's per_connection_buffer_limit_bytes: the retry buffer limit. */
  readonly bufferLimit: number;
  private scope: StatScope;

  constructor(spec: HcmSpec, routes: RouteProvider, runtime: ProxyRuntime, bufferLimit: number) {
    this.spec = spec;
    this.routes = routes;
    this.runtime = runtime;
    this.store = runtime.store;
    this.bufferLimit = bufferLimit;
    this.scope = new StatScope(runtime.store, `http.${spec.statPrefix}.`);
    const s = {} as HcmStats;
    for (const k of COUNTERS) s[k] = this.scope.counter(k);
    for (const k of GAUGES) s[k] = this.scope.gauge(k);
    for (const k of HISTOGRAMS) s[k] = this.scope.histogram(k);
    this.stats = s;
    this.tracer = spec.tracing && new HttpTracer(spec.tracing, this.scope, { ...runtime, node: tracingNode(runtime.node, runtime.localAddress) });
    // Filters register their stats under the HCM's scope; the same names share counters, as Envoy's do.
    const ctx: FilterFactoryContext = {
      counter: (name) => this.scope.counter(name),
      gauge: (name) => this.scope.gauge(name),
      store: runtime.store,
      clusters: runtime.clusters,
      log: runtime.log,
      node: runtime.node,
    };
    this.filters = buildFilterFactories(spec.filters, ctx);
    this.streamCompleteHandlers = this.filters.filter((f) => f.onStreamComplete !== undefined);
  }

  release(): void {
    this.scope.releaseAll();
  }
}
