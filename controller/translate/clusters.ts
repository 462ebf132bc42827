// Gateway clusters (pilot/pkg/networking/core/cluster.go buildOutboundClusters, cluster_builder.go,
// cluster_traffic_policy.go): one `outbound|<port>||<host>` per service port visible to the gateway's
// namespace plus one per DestinationRule subset, and BlackHoleCluster.
import { typedAny, type envoy } from '../../xds/envoy.ts';
import { HTTP_PROTOCOL_OPTIONS_TYPE, UPSTREAM_TLS_TYPE } from '../../xds/type-urls.ts';
import type { PushContext } from '../model/push-context.ts';
import type { ModelEndpoint, ModelPort, ModelService } from '../model/services.ts';
import type { EffectiveDestinationRule } from '../model/destination-rules.ts';
import { mergeSubsetPolicy, policyForPort } from '../model/destination-rules.ts';
import type { Subset, TrafficPolicy } from '../model/istio-types.ts';
import { configPath } from '../model/config.ts';
import { isSubset } from '../model/labels.ts';
import { isHTTP2 } from '../model/protocol.ts';
import { durationSeconds, toEnvoyDuration } from '../model/duration.ts';
import { BLACKHOLE_CLUSTER, DEFAULT_CONNECT_TIMEOUT, adsConfigSource, clusterName, sortedObject, type Struct } from './envoy.ts';
import { clusterLoadAssignment } from './endpoints.ts';
import { tlsTransportSocket, upstreamTlsContext } from './tls.ts';

const MAX_UINT32 = 4294967295;
const CARES_DNS_RESOLVER_TYPE = 'type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig';

type Cluster = envoy.config.cluster.v3.Cluster;
/** The cluster's `envoy.extensions.upstreams.http.v3.HttpProtocolOptions` (typed_extension_protocol_options). */
type HttpProtocolOptions = envoy.extensions.upstreams.http.v3.HttpProtocolOptions;

export interface BuiltCluster {
  cluster: Cluster;
  /** For EDS clusters: the assignment served over EDS under the cluster name. */
  loadAssignment?: envoy.config.endpoint.v3.ClusterLoadAssignment;
}

/** applyConnectionPool: Istio's wide-open defaults, overridden only by values above 0. */
function applyConnectionPool(c: Cluster, http: HttpProtocolOptions | undefined, tp: TrafficPolicy | undefined): HttpProtocolOptions | undefined {
  const cp = tp?.connectionPool;
  // track_remaining is left false: DISABLE_TRACK_REMAINING_CB_METRICS defaults to true in istiod.
  const threshold: envoy.config.cluster.v3.CircuitBreakers.Thresholds = {
    max_connections: MAX_UINT32,
    max_pending_requests: MAX_UINT32,
    max_requests: MAX_UINT32,
    max_retries: MAX_UINT32,
  };
  let idleTimeout = cp?.http?.idleTimeout;
  if (cp?.http) {
    if ((cp.http.http2MaxRequests ?? 0) > 0) threshold.max_requests = cp.http.http2MaxRequests;
    if ((cp.http.http1MaxPendingRequests ?? 0) > 0) threshold.max_pending_requests = cp.http.http1MaxPendingRequests;
    if ((cp.http.maxRetries ?? 0) > 0) threshold.max_retries = cp.http.maxRetries;
  }
  c.connect_timeout = toEnvoyDuration(cp?.tcp?.connectTimeout) ?? DEFAULT_CONNECT_TIMEOUT;
  // applyTCPKeepalive: SO_KEEPALIVE (an empty tcp_keepalive) plus whole seconds for time and interval.
  const ka = cp?.tcp?.tcpKeepalive;
  if (ka) {
    const tcpKeepalive: envoy.config.core.v3.TcpKeepalive = {};
    if ((ka.probes ?? 0) > 0) tcpKeepalive.keepalive_probes = ka.probes;
    const time = durationSeconds(ka.time);
    if (time !== undefined) tcpKeepalive.keepalive_time = time;
    const interval = durationSeconds(ka.interval);
    if (interval !== undefined) tcpKeepalive.keepalive_interval = interval;
    c.upstream_connection_options = { tcp_keepalive: tcpKeepalive };
  }
  if ((cp?.tcp?.maxConnections ?? 0) > 0) threshold.max_connections = cp?.tcp?.maxConnections;
  if (idleTimeout === undefined) idleTimeout = cp?.tcp?.idleTimeout;
  if (tp?.retryBudget) {
    threshold.retry_budget = {
      budget_percent: { value: tp.retryBudget.percent?.value ?? 20 },
      min_retry_concurrency: (tp.retryBudget.minRetryConcurrency ?? 0) > 0 ? tp.retryBudget.minRetryConcurrency : 3,
    };
  }
  c.circuit_breakers = { thresholds: [threshold] };
  const maxConnDuration = toEnvoyDuration(cp?.tcp?.maxConnectionDuration);
  const idle = toEnvoyDuration(idleTimeout);
  const maxReqPerConn = cp?.http?.maxRequestsPerConnection ?? 0;
  const maxStreams = cp?.http?.maxConcurrentStreams ?? 0;
  if (maxConnDuration === undefined && idle === undefined && maxReqPerConn <= 0 && maxStreams <= 0) return http;
  const opts: HttpProtocolOptions = http ?? {};
  const common: envoy.config.core.v3.HttpProtocolOptions = opts.common_http_protocol_options ?? {};
  if (idle !== undefined) common.idle_timeout = idle;
  if (maxReqPerConn > 0) common.max_requests_per_connection = maxReqPerConn;
  if (maxConnDuration !== undefined) common.max_connection_duration = maxConnDuration;
  opts.common_http_protocol_options = common;
  const h2 = opts.explicit_http_config?.http2_protocol_options;
  if (h2 && maxStreams > 0) h2.max_concurrent_streams = maxStreams;
  return opts;
}

/** applyOutlierDetection (only when the DR sets outlierDetection; success-rate ejection is always off). */
function applyOutlierDetection(c: Cluster, tp: TrafficPolicy | undefined): void {
  const od = tp?.outlierDetection;
  if (!od) return;
  const out: envoy.config.cluster.v3.OutlierDetection = { enforcing_success_rate: 0 };
  if (od.consecutive5xxErrors !== undefined) {
    out.consecutive_5xx = od.consecutive5xxErrors;
    out.enforcing_consecutive_5xx = od.consecutive5xxErrors > 0 ? 100 : 0;
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    out.consecutive_gateway_failure = od.consecutiveGatewayErrors;
    out.enforcing_consecutive_gateway_failure = od.consecutiveGatewayErrors > 0 ? 100 : 0;
  }
  const interval = toEnvoyDuration(od.interval);
  if (interval !== undefined) out.interval = interval;
  const base = toEnvoyDuration(od.baseEjectionTime);
  if (base !== undefined) out.base_ejection_time = base;
  if ((od.maxEjectionPercent ?? 0) > 0) out.max_ejection_percent = od.maxEjectionPercent;
  if (od.splitExternalLocalOriginErrors) {
    out.split_external_local_origin_errors = true;
    if ((od.consecutiveLocalOriginFailures ?? 0) > 0) {
      out.consecutive_local_origin_failure = od.consecutiveLocalOriginFailures;
      out.enforcing_consecutive_local_origin_failure = 100;
    }
    out.enforcing_local_origin_success_rate = 0;
  }
  c.outlier_detection = out;
  // Panic mode is disabled (threshold set even at 0, Envoy's default being 50%): with few pods per
  // service it would send traffic to ejected hosts.
  (c.common_lb_config ??= {}).healthy_panic_threshold = { value: od.minHealthPercent ?? 0 };
}

/** applyLoadBalancer: LEAST_REQUEST by default; consistentHash switches to RING_HASH or MAGLEV. */
function applyLoadBalancer(c: Cluster, tp: TrafficPolicy | undefined): void {
  // Panic mode off (0 %) unless outlierDetection.minHealthPercent set a threshold: istiod sends not-ready
  // endpoints (PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS, on by default), and in panic mode Envoy would send traffic
  // to them and to ejected hosts alike (cluster_traffic_policy.go applyLoadBalancer).
  (c.common_lb_config ??= {}).healthy_panic_threshold ??= { value: 0 };
  // A cluster born ORIGINAL_DST (a PASSTHROUGH subset, or a subset of a PASSTHROUGH cluster) stays so whatever
  // the merged policy says: istiod returns early with CLUSTER_PROVIDED.
  if (c.type === 'ORIGINAL_DST') {
    c.lb_policy = 'CLUSTER_PROVIDED';
    return;
  }
  const lb = tp?.loadBalancer;
  // setWarmup (aggression 1 and minimum 10% unless given; istiod writes the runtime key "(") or the deprecated
  // setSlowStartConfig. A consistent-hash balancer takes no slow start.
  let slowStart: { slow_start_config: envoy.config.cluster.v3.Cluster.SlowStartConfig } | undefined;
  const window = toEnvoyDuration(lb?.warmup?.duration);
  if (lb?.warmup && window !== undefined) {
    slowStart = {
      slow_start_config: {
        slow_start_window: window,
        aggression: { default_value: lb.warmup.aggression ?? 1, runtime_key: '(' },
        min_weight_percent: { value: lb.warmup.minimumPercent ?? 10 },
      },
    };
  } else {
    const legacy = toEnvoyDuration(lb?.warmupDurationSecs);
    if (legacy !== undefined) slowStart = { slow_start_config: { slow_start_window: legacy } };
  }
  if (lb?.consistentHash) slowStart = undefined;
  switch (lb?.simple) {
    case 'RANDOM':
      c.lb_policy = 'RANDOM';
      break;
    case 'ROUND_ROBIN':
      c.lb_policy = 'ROUND_ROBIN';
      if (slowStart) c.round_robin_lb_config = slowStart;
      break;
    case 'PASSTHROUGH':
      c.lb_policy = 'CLUSTER_PROVIDED';
      c.type = 'ORIGINAL_DST';
      delete c.eds_cluster_config;
      delete c.load_assignment;
      break;
    default:
      c.lb_policy = 'LEAST_REQUEST';
      if (slowStart) c.least_request_lb_config = slowStart;
  }
  const ch = lb?.consistentHash;
  if (!ch) return;
  if (ch.maglev) {
    c.lb_policy = 'MAGLEV';
    if (ch.maglev.tableSize) c.maglev_lb_config = { table_size: String(ch.maglev.tableSize) };
  } else if (ch.ringHash) {
    c.lb_policy = 'RING_HASH';
    if (ch.ringHash.minimumRingSize) c.ring_hash_lb_config = { minimum_ring_size: String(ch.ringHash.minimumRingSize) };
  } else {
    c.lb_policy = 'RING_HASH';
    c.ring_hash_lb_config = { minimum_ring_size: String(ch.minimumRingSize || 1024) };
  }
}

function istioMetadata(svc: ModelService, dr: EffectiveDestinationRule | undefined, subset: string | undefined): envoy.config.core.v3.Metadata {
  const istio: Struct = { services: [{ host: svc.hostname, name: svc.name, namespace: svc.namespace }] };
  if (dr?.from[0]) istio.config = configPath('destination-rule', dr.from[0].namespace, dr.from[0].name);
  if (subset !== undefined) istio.subset = subset;
  if (svc.meshExternal) istio.external = true;
  return { filter_metadata: { istio: sortedObject(istio) } };
}

function clusterType(svc: ModelService): 'EDS' | 'STRICT_DNS' | 'LOGICAL_DNS' {
  // Gateways use EDS for NONE/headless too (sidecars would use ORIGINAL_DST).
  if (svc.resolution === 'DNSLB') return 'STRICT_DNS';
  if (svc.resolution === 'DNSRoundRobinLB') return 'LOGICAL_DNS';
  return 'EDS';
}

/**
 * DestinationRule `tls` -> the cluster's transport socket (buildUpstreamClusterTLSContext). Returns false when
 * the cluster must not be built (ISTIO_MUTUAL without a mesh CA, incomplete file settings): a route to it then
 * answers 503 (cluster not found) rather than silently sending plaintext.
 */
function applyUpstreamTls(
  push: PushContext,
  c: Cluster,
  name: string,
  svc: ModelService,
  http2: boolean,
  tp: TrafficPolicy | undefined,
  dr: EffectiveDestinationRule | undefined,
): { ok: boolean; http?: HttpProtocolOptions } {
  const tls = tp?.tls;
  if (!tls?.mode || tls.mode === 'DISABLE') return { ok: true };
  const from = dr?.from[0];
  const report = (message: string): void => {
    if (from)
      push.errors.push({ kind: 'DestinationRule', namespace: from.namespace, name: from.name, origin: from.origin, field: 'spec.trafficPolicy.tls', message });
  };
  if (tls.mode === 'ISTIO_MUTUAL') {
    report(
      `tls.mode ISTIO_MUTUAL needs the mesh CA (SDS default/ROOTCA), which meshgate does not run: cluster ${name} is not built on this gateway (harmless if only sidecars use this rule; otherwise use SIMPLE or MUTUAL)`,
    );
    return { ok: false };
  }
  const r = upstreamTlsContext(tls, http2, svc.serviceEntry?.subjectAltNames ?? [], name);
  if ('error' in r) {
    report(`${r.error}: cluster ${name} is not built`);
    return { ok: false };
  }
  if (tls.credentialName) {
    // Reported, not fatal: as with Envoy waiting on SDS, connections through this cluster fail until it exists.
    const cert = tls.mode === 'MUTUAL' ? push.credentials.certificate(tls.credentialName) : undefined;
    if (cert && !cert.ok) report(`client certificate for cluster ${name}: ${cert.reason}`);
    const ca = tls.insecureSkipVerify ? undefined : push.credentials.ca(tls.credentialName);
    if (ca && !ca.ok) report(`CA for cluster ${name}: ${ca.reason}`);
  }
  c.transport_socket = tlsTransportSocket(typedAny(UPSTREAM_TLS_TYPE, r.context));
  if (!r.autoSni && !r.autoSanValidation) return { ok: true };
  const upstream: envoy.config.core.v3.UpstreamHttpProtocolOptions = {};
  if (r.autoSni) upstream.auto_sni = true;
  if (r.autoSanValidation) upstream.auto_san_validation = true;
  return { ok: true, http: { upstream_http_protocol_options: upstream } };
}

function buildOne(
  push: PushContext,
  name: string,
  svc: ModelService,
  port: ModelPort,
  tp: TrafficPolicy | undefined,
  dr: EffectiveDestinationRule | undefined,
  subset: string | undefined,
  endpoints: ModelEndpoint[],
  originalDst = false,
): BuiltCluster | undefined {
  const type = originalDst ? 'ORIGINAL_DST' : clusterType(svc);
  // supportsUnhealthyEndpoints: not with a minHealthPercent, below which Envoy's panic mode would send them traffic.
  let eps = (tp?.outlierDetection?.minHealthPercent ?? 0) > 0 ? endpoints.filter((e) => e.health !== 'UNHEALTHY') : endpoints;
  if (type === 'LOGICAL_DNS') eps = eps.slice(0, 1); // one endpoint per host and port
  if ((type === 'STRICT_DNS' || type === 'LOGICAL_DNS') && eps.length === 0) return undefined; // DNS clusters without endpoints are not emitted
  const c: Cluster = { name, type, common_lb_config: {}, alt_stat_name: `${name};` };
  if (type === 'EDS') c.eds_cluster_config = { eds_config: adsConfigSource(), service_name: name };
  else if (type === 'ORIGINAL_DST') {
    // buildCluster: a ServiceEntry (resolution NONE) port with a targetPort overrides the destination port.
    const target = port.targetPort;
    if (svc.serviceEntry && svc.resolution === 'Passthrough' && typeof target === 'number' && target !== 0) {
      c.original_dst_lb_config = { upstream_port_override: target };
    }
  } else {
    c.dns_lookup_family = 'V4_ONLY';
    // buildCluster: the c-ares resolver with PILOT_DNS_CARES_UDP_MAX_QUERIES (100) UDP queries at most per resolver.
    c.typed_dns_resolver_config = { name: 'envoy.network.dns_resolver.cares', typed_config: typedAny(CARES_DNS_RESOLVER_TYPE, { udp_max_queries: 100 }) };
    c.dns_refresh_rate = '60s';
    c.respect_dns_ttl = true;
    c.load_assignment = clusterLoadAssignment(name, eps);
  }
  // setUpstreamProtocol: h2 for HTTP2/GRPC ports; gateways use HTTP/1.1 otherwise (no sniffing). Then
  // applyH2Upgrade: h2 too where the connection pool asks for UPGRADE (any port protocol: the DestinationRule's
  // author vouches that it speaks HTTP), unless it uses the client's protocol; the mesh default is DO_NOT_UPGRADE.
  const h2Upgrade = tp?.connectionPool?.http?.h2UpgradePolicy === 'UPGRADE' && !tp.connectionPool.http.useClientProtocol;
  let http: HttpProtocolOptions | undefined = isHTTP2(port.protocol) || h2Upgrade ? { explicit_http_config: { http2_protocol_options: {} } } : undefined;
  http = applyConnectionPool(c, http, tp);
  if (tp?.connectionPool?.http?.useClientProtocol) {
    http = { ...(http ?? {}), use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} } };
    delete http.explicit_http_config;
  }
  applyOutlierDetection(c, tp);
  applyLoadBalancer(c, tp);
  // isHttp2Cluster: ALPN h2 only when the cluster ends up with explicit HTTP/2 (not with the client's protocol).
  const tls = applyUpstreamTls(push, c, name, svc, http?.explicit_http_config?.http2_protocol_options !== undefined, tp, dr);
  if (!tls.ok) return undefined;
  if (tls.http) http = { ...(http ?? {}), ...tls.http };
  c.metadata = istioMetadata(svc, dr, subset);
  if (http) {
    // UpstreamProtocolOptions is required by Envoy: default to explicit HTTP/1.1.
    if (!http.explicit_http_config && !http.use_downstream_protocol_config) http.explicit_http_config = { http_protocol_options: {} };
    c.typed_extension_protocol_options = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typedAny(HTTP_PROTOCOL_OPTIONS_TYPE, http) };
  }
  const built: BuiltCluster = { cluster: c };
  if (c.type === 'EDS') built.loadAssignment = clusterLoadAssignment(name, eps);
  return built;
}

function subsetEndpoints(eps: readonly ModelEndpoint[], subset: Subset): ModelEndpoint[] {
  return eps.filter((e) => isSubset(subset.labels, e.labels));
}

/** Every cluster (and EDS assignment) this gateway receives; duplicates by name keep the first. */
export function buildClusters(push: PushContext): BuiltCluster[] {
  const out: BuiltCluster[] = [];
  const names = new Set<string>();
  const add = (b: BuiltCluster | undefined): void => {
    if (!b) return;
    const n = b.cluster.name ?? '';
    if (names.has(n)) return;
    names.add(n);
    out.push(b);
  };
  for (const svc of push.services) {
    const dr = push.destinationRules.lookup(svc.hostname, svc.namespace);
    for (const port of svc.ports) {
      if (port.protocol === 'UDP') continue;
      const eps = push.endpoints(svc, port);
      add(buildOne(push, clusterName(port.port, '', svc.hostname), svc, port, policyForPort(dr?.trafficPolicy, port.port), dr, undefined, eps));
      // istiod skips the subsets too when the default DNS cluster has no endpoints.
      if (clusterType(svc) !== 'EDS' && eps.length === 0) continue;
      const topPassthrough = policyForPort(dr?.trafficPolicy, port.port)?.loadBalancer?.simple === 'PASSTHROUGH';
      for (const subset of dr?.subsets ?? []) {
        const tp = mergeSubsetPolicy(dr?.trafficPolicy, subset.trafficPolicy, port.port);
        // buildSubsetCluster: born ORIGINAL_DST when the subset's own (top-level) policy says PASSTHROUGH or the
        // default cluster already is ORIGINAL_DST; otherwise a merged PASSTHROUGH converts it in applyLoadBalancer.
        const born = topPassthrough || subset.trafficPolicy?.loadBalancer?.simple === 'PASSTHROUGH';
        add(buildOne(push, clusterName(port.port, subset.name, svc.hostname), svc, port, tp, dr, subset.name, subsetEndpoints(eps, subset), born));
      }
    }
  }
  add({ cluster: { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: DEFAULT_CONNECT_TIMEOUT, lb_policy: 'ROUND_ROBIN' } });
  return out;
}
