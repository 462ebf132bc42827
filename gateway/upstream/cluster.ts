// One upstream cluster (envoy.config.cluster.v3.Cluster): validated settings, the current host set from
// EDS / load_assignment / DNS, the load balancer over the eligible hosts, circuit-breaker thresholds and
// counters, and its stats under `cluster.<alt_stat_name or name>.`.
import type { Socket } from 'node:net';
import { resolveHostname } from './dns.ts';
import { parseUpstreamTransportSocket, UpstreamTls, type UpstreamTlsSpec } from '../tls/upstream-context.ts';
import { SecretStore } from '../tls/secrets.ts';
import { connectPlain } from './tcp-connect.ts';
import type { PoolEvents, UpstreamPool } from './connection-pool.ts';
import { H1Pool } from './h1-pool.ts';
import { H2Pool } from './h2-pool.ts';
import { parseHttp2Options, type Http2Settings } from '../xds/http2-options.ts';
import type { Logger } from 'pino';
import { durationMs, int64, unpackAny, type envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError, anyType } from '../xds/json.ts';
import { StatScope, type StatsStore } from '../stats/store.ts';
import { HEALTH_BY_NAME, HEALTH_DEGRADED, HEALTH_DRAINING, HEALTH_TIMEOUT, HEALTH_UNHEALTHY, Host } from './host.ts';
import { EDS_WEIGHT, type LoadBalancer, type WeightOf } from './load-balancer.ts';
import { LeastRequestLoadBalancer } from './least-request.ts';
import { RandomLoadBalancer } from './random.ts';
import { RoundRobinLoadBalancer } from './round-robin.ts';
import { DEFAULT_MAX_RING_SIZE, DEFAULT_MIN_RING_SIZE, RingHashLoadBalancer } from './ring-hash.ts';
import { DEFAULT_TABLE_SIZE, MaglevLoadBalancer } from './maglev.ts';
import { OutlierDetector, parseOutlierDetection, type OutlierConfig } from './outlier-detector.ts';
import type { WorkerSharing } from './worker-sharing.ts';
import { CX, PENDING, RETRY, RQ, ResourceManager } from './resource-manager.ts';
import { checkRuntimeDouble, parseSlowStart, slowStartWeight, type SlowStartConfig } from './slow-start.ts';
import { DEFAULT_CLEANUP_INTERVAL_MS, OriginalDstHosts, parseOriginalDstConfig, type ChooseContext, type OriginalDstConfig } from './original-dst.ts';

const LB_ROUND_ROBIN = 'ROUND_ROBIN';
const LB_LEAST_REQUEST = 'LEAST_REQUEST';
const LB_RANDOM = 'RANDOM';
const LB_RING_HASH = 'RING_HASH';
const LB_MAGLEV = 'MAGLEV';
const LB_CLUSTER_PROVIDED = 'CLUSTER_PROVIDED';

export interface Thresholds {
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRetries: number;
  /** retry_budget (DestinationRule trafficPolicy.retryBudget): replaces max_retries when set. */
  retryBudget?: { percent: number; minConcurrency: number } | undefined;
}

/** Settings read from a Cluster resource (everything validated). */
export interface ClusterSpec {
  name: string;
  observabilityName: string;
  type: 'EDS' | 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';
  edsServiceName: string | undefined;
  connectTimeoutMs: number;
  lbPolicy: string;
  choiceCount: number;
  /** LEAST_REQUEST active_request_bias (Envoy's default 1.0). */
  activeRequestBias: number;
  panicThreshold: number;
  idleTimeoutMs: number;
  maxRequestsPerConnection: number;
  /** common_http_protocol_options.max_connection_duration (DestinationRule tcp.maxConnectionDuration); 0: none. */
  maxConnectionDurationMs: number;
  thresholds: Thresholds;
  highThresholds: Thresholds;
  dnsRefreshMs: number;
  loadAssignment: ClusterLoadAssignment | undefined;
  /** Upstream HTTP/2 (h2c prior knowledge). */
  http2: boolean;
  http2Settings: Http2Settings;
  /** use_downstream_protocol_config: HTTP/2 clients get an HTTP/2 upstream, HTTP/1.1 ones HTTP/1.1. */
  useDownstreamProtocol: boolean;
  /** RING_HASH minimum / maximum ring size, MAGLEV table size. */
  minRingSize: number;
  maxRingSize: number;
  maglevTableSize: number;
  outlier: OutlierConfig | undefined;
  /** upstream_connection_options.tcp_keepalive keepalive_time (ms), or undefined (OS default, off). */
  tcpKeepaliveMs: number | undefined;
  /** slow_start_config of ROUND_ROBIN / LEAST_REQUEST (DestinationRule warmup). */
  slowStart: SlowStartConfig | undefined;
  /** UpstreamTlsContext (DestinationRule tls SIMPLE / MUTUAL), with auto_sni / auto_san_validation. */
  tls: UpstreamTlsSpec | undefined;
  /** respect_dns_ttl (Istio sets it): the records' TTL is the refresh interval. */
  respectDnsTtl: boolean;
  /** ORIGINAL_DST clusters: original_dst_lb_config and cleanup_interval. */
  originalDst?: OriginalDstConfig | undefined;
  /** metadata.filter_metadata.istio.services[0]: the service Istio's stats report as destination_service. */
  istioService?: IstioService | undefined;
}

/** A service of a cluster's Istio metadata (host `reviews.default.svc.cluster.local`, name `reviews`). */
export interface IstioService {
  host: string;
  name: string;
}

/** The first of `filter_metadata.istio.services` (istio_stats reads only that one), when it names a host. */
function istioServiceOf(m: envoy.config.core.v3.Metadata | undefined): IstioService | undefined {
  const services = m?.filter_metadata?.istio?.services;
  const first = Array.isArray(services) ? (services[0] as unknown) : undefined;
  if (typeof first !== 'object' || first === null) return undefined;
  const o = first as Record<string, unknown>;
  const host = typeof o.host === 'string' ? o.host : '';
  // Without a name the stats filter takes the host's first label.
  const name = typeof o.name === 'string' ? o.name : (host.split('.')[0] ?? '');
  return host || name ? { host, name } : undefined;
}

type EnvoyCluster = envoy.config.cluster.v3.Cluster;
type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;

// What the proxy does with each field of a Cluster and the messages it holds (docs/xds-support.md).
const checkCluster = fieldTable('envoy.config.cluster.v3.Cluster', {
  name: true,
  alt_stat_name: true,
  type: true,
  eds_cluster_config: true,
  connect_timeout: true,
  lb_policy: true,
  load_assignment: true,
  circuit_breakers: true,
  common_lb_config: true,
  typed_extension_protocol_options: true,
  max_requests_per_connection: true,
  dns_refresh_rate: true,
  respect_dns_ttl: true,
  upstream_connection_options: true,
  transport_socket: true,
  least_request_lb_config: true,
  round_robin_lb_config: true,
  ring_hash_lb_config: true,
  maglev_lb_config: true,
  outlier_detection: true,
  http2_protocol_options: true,
  original_dst_lb_config: true,
  cleanup_interval: true,
  metadata: true,
  per_connection_buffer_limit_bytes:
    "bodies stream with node's backpressure (the upstream socket's 256 KiB high-water mark), not Envoy's per-connection buffers",
  dns_lookup_family: 'names always resolve to IPv4 addresses (V4_ONLY, what Istio sets for IPv4 clusters)',
  typed_dns_resolver_config:
    "names go to meshgate's own resolver (the system's, or --dns-server), not to a per-cluster one: Istio's c-ares settings (udp_max_queries) have no counterpart",
  track_cluster_stats: 'request/response size histograms and timeout budgets are not kept',
  ignore_health_on_host_removal: 'without active health checking a host leaves as soon as service discovery drops it, which is what this option asks for',
  close_connections_on_host_health_failure: 'applies to hosts failing active health checks, which this proxy does not run',
  wait_for_warm_on_init: 'initialization always waits for EDS clusters to warm (the default, true)',
  filters: 'accepted only empty; upstream network filters are NACKed',
  http_protocol_options: 'HTTP/1.1 codec options (header case, absolute URLs) are not applied to upstream requests',
});
const checkEdsClusterConfig = fieldTable('envoy.config.cluster.v3.Cluster.EdsClusterConfig', { eds_config: true, service_name: true });
const checkLeastRequest = fieldTable('envoy.config.cluster.v3.Cluster.LeastRequestLbConfig', {
  choice_count: true,
  slow_start_config: true,
  active_request_bias: true,
});
const checkRoundRobin = fieldTable('envoy.config.cluster.v3.Cluster.RoundRobinLbConfig', { slow_start_config: true });
const checkCommonLb = fieldTable('envoy.config.cluster.v3.Cluster.CommonLbConfig', {
  healthy_panic_threshold: true,
  locality_weighted_lb_config: 'locality weights (Istio localityLbSetting distribute) are not applied: hosts are balanced by their own weights',
  zone_aware_lb_config: 'zone-aware routing is not implemented (Istio does not set it)',
});
const checkRingHash = fieldTable('envoy.config.cluster.v3.Cluster.RingHashLbConfig', { minimum_ring_size: true, maximum_ring_size: true, hash_function: true });
const checkMaglev = fieldTable('envoy.config.cluster.v3.Cluster.MaglevLbConfig', { table_size: true });
const checkConnectionOptions = fieldTable('envoy.config.cluster.v3.UpstreamConnectionOptions', {
  tcp_keepalive: true,
  set_local_interface_name_on_upstream_connections: "only feeds Envoy's connection info, which this proxy does not report",
  happy_eyeballs_config: 'a host is one address: there is no address-family race to tune',
});
const checkTcpKeepalive = fieldTable(
  'envoy.config.core.v3.TcpKeepalive',
  {
    keepalive_time: true,
    keepalive_probes: 'node sockets set only the idle time; the probe count stays the OS default',
    keepalive_interval: 'node sockets set only the idle time; the probe interval stays the OS default',
  },
  'Cluster upstream_connection_options',
);
const checkCircuitBreakers = fieldTable('envoy.config.cluster.v3.CircuitBreakers', {
  thresholds: true,
  per_host_thresholds: 'per-host limits are not enforced, only the cluster-wide thresholds (Istio does not set them)',
});
const checkThresholds = fieldTable('envoy.config.cluster.v3.CircuitBreakers.Thresholds', {
  priority: true,
  max_connections: true,
  max_pending_requests: true,
  max_requests: true,
  max_retries: true,
  retry_budget: true,
  track_remaining: 'the remaining_* gauges are not kept',
  max_connection_pools: 'each host has one pool per cluster; the number of pools is not limited',
});
const checkRetryBudget = fieldTable('envoy.config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget', { budget_percent: true, min_retry_concurrency: true });
const checkHttpProtocolOptions = fieldTable('envoy.extensions.upstreams.http.v3.HttpProtocolOptions', {
  common_http_protocol_options: true,
  explicit_http_config: true,
  use_downstream_protocol_config: true,
  upstream_http_protocol_options: true,
});
const checkExplicitHttpConfig = fieldTable('envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig', {
  http_protocol_options: true,
  http2_protocol_options: true,
});
const checkDownstreamProtocolConfig = fieldTable('envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig', {
  http_protocol_options: true,
  http2_protocol_options: true,
});
const checkCommonHttpProtocolOptions = fieldTable(
  'envoy.config.core.v3.HttpProtocolOptions',
  {
    idle_timeout: true,
    max_requests_per_connection: true,
    max_connection_duration: true,
    headers_with_underscores_action: 'not applied to upstream responses: header names with underscores are kept, as with the default ALLOW',
    max_headers_count: "the upstream codec keeps Envoy's default limit of 100 response headers",
  },
  'Cluster HttpProtocolOptions',
);
const checkUpstreamHttpProtocolOptions = fieldTable('envoy.config.core.v3.UpstreamHttpProtocolOptions', { auto_sni: true, auto_san_validation: true });

function thresholds(t: envoy.config.cluster.v3.CircuitBreakers.Thresholds | undefined, where: string): Thresholds {
  // Envoy's defaults when a threshold is not configured: 1024 / 1024 / 1024 / 3.
  const o = t ?? {};
  return {
    maxConnections: o.max_connections ?? 1024,
    maxPendingRequests: o.max_pending_requests ?? 1024,
    maxRequests: o.max_requests ?? 1024,
    maxRetries: o.max_retries ?? 3,
    retryBudget: o.retry_budget === undefined ? undefined : retryBudget(o.retry_budget, `${where}.retry_budget`),
  };
}

/** RetryBudget: budget_percent (default 20%) of active plus pending requests, at least min_retry_concurrency (3). */
function retryBudget(b: envoy.config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget, where: string): { percent: number; minConcurrency: number } {
  checkRetryBudget(b, where);
  const pct = b.budget_percent === undefined ? 20 : (b.budget_percent.value ?? 0);
  if (!Number.isFinite(pct) || pct < 0 || pct > 100) throw new ConfigError(`${where}.budget_percent must be in [0, 100]`);
  return { percent: pct, minConcurrency: b.min_retry_concurrency ?? 3 };
}

/** circuit_breakers: the DEFAULT and HIGH priority thresholds (the last of each priority wins, as in Envoy). */
function circuitBreakers(cb: envoy.config.cluster.v3.CircuitBreakers | undefined, where: string): { normal: Thresholds; high: Thresholds } {
  let normal: envoy.config.cluster.v3.CircuitBreakers.Thresholds | undefined;
  let high: envoy.config.cluster.v3.CircuitBreakers.Thresholds | undefined;
  if (cb !== undefined) {
    checkCircuitBreakers(cb, `${where}.circuit_breakers`);
    for (const [i, t] of (cb.thresholds ?? []).entries()) {
      checkThresholds(t, `${where}.circuit_breakers.thresholds[${i}]`);
      if (t.priority === 'HIGH') high = t;
      else normal = t;
    }
  }
  return { normal: thresholds(normal, `${where}.circuit_breakers`), high: thresholds(high, `${where}.circuit_breakers`) };
}

/** What typed_extension_protocol_options (envoy.extensions.upstreams.http.v3.HttpProtocolOptions) set. */
interface HttpOptions {
  idleTimeoutMs: number;
  maxRequestsPerConnection: number;
  maxConnectionDurationMs: number;
  http2: boolean;
  /** The HTTP/2 settings of the upstream sessions (explicit or downstream-protocol config). */
  http2Settings: Http2Settings;
  /** use_downstream_protocol_config: HTTP/2 upstream for HTTP/2 clients (DestinationRule useClientProtocol). */
  useDownstreamProtocol: boolean;
  autoSni: boolean;
  autoSanValidation: boolean;
}

function httpProtocolOptions(c: EnvoyCluster, where: string): HttpOptions {
  const out: HttpOptions = {
    idleTimeoutMs: 3_600_000,
    maxRequestsPerConnection: c.max_requests_per_connection ?? 0,
    maxConnectionDurationMs: 0,
    // Deprecated cluster-level http2_protocol_options (still accepted by Envoy) selects HTTP/2 too.
    http2: c.http2_protocol_options !== undefined,
    http2Settings: parseHttp2Options(c.http2_protocol_options ?? {}, `${where}.http2_protocol_options`),
    useDownstreamProtocol: false,
    autoSni: false,
    autoSanValidation: false,
  };
  for (const [k, any] of Object.entries(c.typed_extension_protocol_options ?? {})) {
    const w = `${where}.typed_extension_protocol_options['${k}']`;
    if (anyType(any) !== 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions')
      throw new ConfigError(`${w}: ${anyType(any)} is not supported by this proxy`);
    const o = unpackAny(any, 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
    checkHttpProtocolOptions(o, w);
    const common = o.common_http_protocol_options ?? {};
    checkCommonHttpProtocolOptions(common, `${w}.common_http_protocol_options`);
    out.idleTimeoutMs = durationMs(common.idle_timeout, out.idleTimeoutMs);
    if (common.max_requests_per_connection !== undefined) out.maxRequestsPerConnection = common.max_requests_per_connection;
    out.maxConnectionDurationMs = durationMs(common.max_connection_duration, out.maxConnectionDurationMs);
    const uhpo = o.upstream_http_protocol_options ?? {};
    checkUpstreamHttpProtocolOptions(uhpo, `${w}.upstream_http_protocol_options`);
    if (uhpo.auto_sni === true) out.autoSni = true;
    if (uhpo.auto_san_validation === true) out.autoSanValidation = true;
    if (o.explicit_http_config !== undefined) {
      const e = o.explicit_http_config;
      if (e.http3_protocol_options !== undefined) throw new ConfigError(`${w}: HTTP/3 upstreams are not supported by this proxy`);
      checkExplicitHttpConfig(e, `${w}.explicit_http_config`);
      if (e.http2_protocol_options !== undefined) {
        out.http2 = true;
        out.http2Settings = parseHttp2Options(e.http2_protocol_options, `${w}.explicit_http_config.http2_protocol_options`);
      }
    }
    if (o.use_downstream_protocol_config !== undefined) {
      const d = o.use_downstream_protocol_config;
      checkDownstreamProtocolConfig(d, `${w}.use_downstream_protocol_config`);
      if (d.http3_protocol_options !== undefined) throw new ConfigError(`${w}: HTTP/3 upstreams are not supported by this proxy`);
      out.useDownstreamProtocol = true;
      if (d.http2_protocol_options !== undefined)
        out.http2Settings = parseHttp2Options(d.http2_protocol_options, `${w}.use_downstream_protocol_config.http2_protocol_options`);
    }
  }
  return out;
}

/** Validates a Cluster resource and extracts what the proxy needs. Throws ConfigError naming the problem. */
export function parseCluster(c: EnvoyCluster): ClusterSpec {
  const name = c.name ?? '';
  if (!name) throw new ConfigError('cluster without a name');
  const where = `cluster '${name}'`;
  checkCluster(c, where);
  const type = c.type ?? 'STATIC';
  if (type !== 'EDS' && type !== 'STATIC' && type !== 'STRICT_DNS' && type !== 'LOGICAL_DNS' && type !== 'ORIGINAL_DST') {
    throw new ConfigError(`${where}: cluster type ${String(type)} is not supported by this proxy`);
  }
  let edsServiceName: string | undefined;
  if (type === 'EDS') {
    const e = c.eds_cluster_config ?? {};
    checkEdsClusterConfig(e, `${where}.eds_cluster_config`);
    if (e.eds_config?.ads === undefined) throw new ConfigError(`${where}: eds_config must use ADS`);
    edsServiceName = e.service_name || name;
  } else if (c.eds_cluster_config !== undefined) throw new ConfigError(`${where}: eds_cluster_config on a ${type} cluster`);
  const lbPolicy = c.lb_policy ?? LB_ROUND_ROBIN;
  if (
    lbPolicy !== LB_ROUND_ROBIN &&
    lbPolicy !== LB_LEAST_REQUEST &&
    lbPolicy !== LB_RANDOM &&
    lbPolicy !== LB_RING_HASH &&
    lbPolicy !== LB_MAGLEV &&
    lbPolicy !== LB_CLUSTER_PROVIDED
  ) {
    throw new ConfigError(`${where}: lb_policy ${lbPolicy} is not supported by this proxy`);
  }
  // OriginalDstClusterFactory's checks (and CLUSTER_PROVIDED needs a cluster that provides a load balancer).
  let originalDst: OriginalDstConfig | undefined;
  if (type === 'ORIGINAL_DST') {
    if (lbPolicy !== LB_CLUSTER_PROVIDED)
      throw new ConfigError(
        `${where}: LB policy ${lbPolicy} is not valid for Cluster type ORIGINAL_DST. Only 'CLUSTER_PROVIDED' is allowed with cluster type 'ORIGINAL_DST'`,
      );
    if (c.load_assignment !== undefined) throw new ConfigError(`${where}: ORIGINAL_DST clusters must have no load assignment configured`);
    originalDst = parseOriginalDstConfig(c.original_dst_lb_config ?? {}, where, durationMs(c.cleanup_interval, DEFAULT_CLEANUP_INTERVAL_MS));
  } else if (lbPolicy === LB_CLUSTER_PROVIDED) {
    throw new ConfigError(
      `${where}: lb_policy CLUSTER_PROVIDED is not supported by this proxy for cluster type ${type} (only ORIGINAL_DST provides a load balancer)`,
    );
  } else if (c.original_dst_lb_config !== undefined) {
    throw new ConfigError(`${where}: original_dst_lb_config on a ${type} cluster`);
  }
  let choiceCount = 2;
  let activeRequestBias = 1;
  let slowStart: SlowStartConfig | undefined;
  if (c.least_request_lb_config !== undefined) {
    const l = c.least_request_lb_config;
    checkLeastRequest(l, `${where}.least_request_lb_config`);
    slowStart = parseSlowStart(l.slow_start_config, `${where}.least_request_lb_config.slow_start_config`);
    choiceCount = l.choice_count ?? 2;
    if (l.active_request_bias !== undefined) {
      checkRuntimeDouble(l.active_request_bias, `${where}.least_request_lb_config.active_request_bias`);
      // Envoy falls back to 1.0 for a bias that is negative or not a number.
      const b = l.active_request_bias.default_value ?? 0;
      activeRequestBias = Number.isFinite(b) && b >= 0 ? b : 1;
    }
  }
  if (c.round_robin_lb_config !== undefined) {
    checkRoundRobin(c.round_robin_lb_config, `${where}.round_robin_lb_config`);
    slowStart = parseSlowStart(c.round_robin_lb_config.slow_start_config, `${where}.round_robin_lb_config.slow_start_config`);
  }
  // healthy_panic_threshold: absent, Envoy's 50%; `{}` (what istiod sends) is 0%, which turns panic mode off.
  // Envoy rounds the percentage to an integer (PROTOBUF_PERCENT_TO_ROUNDED_INTEGER_OR_DEFAULT).
  let panicThreshold = 50;
  if (c.common_lb_config !== undefined) {
    checkCommonLb(c.common_lb_config, `${where}.common_lb_config`);
    const p = c.common_lb_config.healthy_panic_threshold;
    if (p !== undefined) {
      const v = p.value ?? 0;
      if (!(v >= 0 && v <= 100)) throw new ConfigError(`${where}.common_lb_config.healthy_panic_threshold.value must be in [0, 100]`);
      panicThreshold = Math.round(v);
    }
  }
  if (c.filters !== undefined && c.filters.length > 0) throw new ConfigError(`${where}: upstream network filters are not supported by this proxy`);
  const tls = c.transport_socket === undefined ? undefined : parseUpstreamTransportSocket(c.transport_socket, `${where}.transport_socket`);
  const http = httpProtocolOptions(c, where);
  if (tls && http.autoSni) tls.autoSni = true;
  if (tls && http.autoSanValidation) tls.autoSanValidation = true;
  const cb = circuitBreakers(c.circuit_breakers, where);
  // Envoy accepts a STATIC cluster with no hosts (Istio's BlackHoleCluster is one); only LOGICAL_DNS needs its host.
  if (type === 'LOGICAL_DNS' && c.load_assignment === undefined) throw new ConfigError(`${where}: a LOGICAL_DNS cluster needs a load_assignment`);
  return {
    name,
    observabilityName: c.alt_stat_name || name,
    type,
    edsServiceName,
    connectTimeoutMs: durationMs(c.connect_timeout, 5000),
    lbPolicy,
    choiceCount,
    activeRequestBias,
    panicThreshold,
    idleTimeoutMs: http.idleTimeoutMs,
    maxRequestsPerConnection: http.maxRequestsPerConnection,
    maxConnectionDurationMs: http.maxConnectionDurationMs,
    thresholds: cb.normal,
    highThresholds: cb.high,
    dnsRefreshMs: durationMs(c.dns_refresh_rate, 5000),
    loadAssignment: c.load_assignment,
    istioService: istioServiceOf(c.metadata),
    http2: http.http2,
    http2Settings: http.http2Settings,
    useDownstreamProtocol: http.useDownstreamProtocol,
    ...consistentHashConfig(c, where),
    outlier: c.outlier_detection === undefined ? undefined : parseOutlierDetection(c.outlier_detection, `${where}.outlier_detection`),
    tcpKeepaliveMs: tcpKeepalive(c.upstream_connection_options, `${where}.upstream_connection_options`),
    slowStart: lbPolicy === LB_ROUND_ROBIN || lbPolicy === LB_LEAST_REQUEST ? slowStart : undefined,
    tls,
    respectDnsTtl: c.respect_dns_ttl === true,
    originalDst,
  };
}

/** ring_hash_lb_config (minimum_ring_size 1024, maximum 8M, XX_HASH) and maglev_lb_config (table_size 65537). */
function consistentHashConfig(c: EnvoyCluster, where: string): { minRingSize: number; maxRingSize: number; maglevTableSize: number } {
  const out = { minRingSize: DEFAULT_MIN_RING_SIZE, maxRingSize: DEFAULT_MAX_RING_SIZE, maglevTableSize: DEFAULT_TABLE_SIZE };
  if (c.ring_hash_lb_config !== undefined) {
    const w = `${where}.ring_hash_lb_config`;
    const r = c.ring_hash_lb_config;
    checkRingHash(r, w);
    if (r.hash_function !== undefined && r.hash_function !== 'XX_HASH')
      throw new ConfigError(`${w}.hash_function ${JSON.stringify(r.hash_function)} is not supported by this proxy`);
    out.minRingSize = int64(r.minimum_ring_size, DEFAULT_MIN_RING_SIZE);
    out.maxRingSize = int64(r.maximum_ring_size, DEFAULT_MAX_RING_SIZE);
    if (out.minRingSize > out.maxRingSize)
      throw new ConfigError(`${w}: minimum_ring_size ${out.minRingSize} is larger than maximum_ring_size ${out.maxRingSize}`);
  }
  if (c.maglev_lb_config !== undefined) {
    checkMaglev(c.maglev_lb_config, `${where}.maglev_lb_config`);
    out.maglevTableSize = int64(c.maglev_lb_config.table_size, DEFAULT_TABLE_SIZE);
  }
  return out;
}

/** upstream_connection_options.tcp_keepalive: SO_KEEPALIVE with keepalive_time (Istio tcpKeepalive.time). */
function tcpKeepalive(o: envoy.config.cluster.v3.UpstreamConnectionOptions | undefined, where: string): number | undefined {
  if (o === undefined) return undefined;
  checkConnectionOptions(o, where);
  if (o.tcp_keepalive === undefined) return undefined;
  checkTcpKeepalive(o.tcp_keepalive, `${where}.tcp_keepalive`);
  // Only the idle time maps onto node sockets; probes and interval stay the OS defaults.
  return (o.tcp_keepalive.keepalive_time ?? 0) * 1000;
}

export interface HostSpec {
  address: string;
  port: number;
  weight: number;
  health: number;
  priority: number;
  hostname: string;
  locality: { region: string; zone: string; sub_zone: string };
  /** metadata.filter_metadata.istio.workload: Istio's `name;namespace;canonical;revision;cluster` of the endpoint. */
  workload: string;
}

const checkLoadAssignment = fieldTable('envoy.config.endpoint.v3.ClusterLoadAssignment', {
  cluster_name: true,
  endpoints: true,
  policy: true,
  named_endpoints: 'only referenced by LbEndpoint.endpoint_name, which is NACKed',
});
const checkPolicy = fieldTable('envoy.config.endpoint.v3.ClusterLoadAssignment.Policy', {
  overprovisioning_factor: 'a priority level is used while it has a healthy host (no spill-over by overprovisioned health)',
  endpoint_stale_after: 'assignments do not expire: the last one stays until the next update',
  weighted_priority_health: 'a priority level is used while it has a healthy host (no spill-over by weighted health)',
});
const checkLocalityLbEndpoints = fieldTable('envoy.config.endpoint.v3.LocalityLbEndpoints', {
  locality: true,
  lb_endpoints: true,
  priority: true,
  load_balancing_weight: 'locality weights are not applied: hosts are balanced by their own weights',
  metadata: 'no filter here reads locality metadata',
  proximity: 'not used by any load balancer (nor by Envoy)',
});
const checkLbEndpoint = fieldTable('envoy.config.endpoint.v3.LbEndpoint', {
  endpoint: true,
  health_status: true,
  load_balancing_weight: true,
  metadata: true,
});
const checkEndpoint = fieldTable('envoy.config.endpoint.v3.Endpoint', {
  address: true,
  hostname: true,
  health_check_config: 'there is no active health checking',
  additional_addresses: 'only the primary address is dialled',
});
const checkSocketAddress = fieldTable(
  'envoy.config.core.v3.SocketAddress',
  {
    address: true,
    port_value: true,
    protocol: true,
    resolver_name: 'hostnames go to the system resolver (or --dns-server)',
    ipv4_compat: 'only matters to sockets that listen on IPv6',
  },
  'endpoint address',
);

/** Validates a ClusterLoadAssignment (or a cluster's load_assignment) into host specs. */
export function parseLoadAssignment(cla: ClusterLoadAssignment, where: string, allowHostnames = false): HostSpec[] {
  checkLoadAssignment(cla, where);
  if (cla.policy !== undefined) checkPolicy(cla.policy, `${where}.policy`);
  const out: HostSpec[] = [];
  for (const [i, l] of (cla.endpoints ?? []).entries()) {
    const w = `${where}.endpoints[${i}]`;
    checkLocalityLbEndpoints(l, w);
    const loc = l.locality ?? {};
    const locality = { region: loc.region ?? '', zone: loc.zone ?? '', sub_zone: loc.sub_zone ?? '' };
    const priority = l.priority ?? 0;
    for (const [j, e] of (l.lb_endpoints ?? []).entries()) {
      const we = `${w}.lb_endpoints[${j}]`;
      if (e.endpoint_name !== undefined) throw new ConfigError(`${we}: named endpoints are not supported`);
      checkLbEndpoint(e, we);
      const ep = e.endpoint ?? {};
      checkEndpoint(ep, `${we}.endpoint`);
      const sa = ep.address?.socket_address;
      if (sa === undefined) throw new ConfigError(`${we}: only socket_address endpoints are supported`);
      checkSocketAddress(sa, `${we}.endpoint.address.socket_address`);
      if (sa.protocol !== undefined && sa.protocol !== 'TCP') throw new ConfigError(`${we}: only TCP endpoints are supported`);
      const address = sa.address ?? '';
      if (!allowHostnames && !isIp(address)) throw new ConfigError(`${we}: '${address}' is not an IP address`);
      const health = e.health_status === undefined ? 0 : HEALTH_BY_NAME[e.health_status];
      if (health === undefined) throw new ConfigError(`${we}: unknown health_status`);
      const lbw = e.load_balancing_weight ?? 1;
      if (lbw < 1) throw new ConfigError(`${we}.load_balancing_weight must be at least 1`);
      const workload = e.metadata?.filter_metadata?.istio?.workload;
      out.push({
        address,
        port: sa.port_value ?? 0,
        weight: lbw,
        health,
        priority,
        hostname: ep.hostname ?? '',
        locality,
        workload: typeof workload === 'string' ? workload : '',
      });
    }
  }
  return out;
}

function isIp(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s));
}

export interface ClusterStats {
  upstream_cx_connect_ms: number;
  upstream_cx_length_ms: number;
  /** The router's dynamic histograms (CodeStatsImpl::chargeResponseTiming): shown once recorded. */
  upstream_rq_time: number;
  external_upstream_rq_time: number;
  upstream_rq_total: number;
  upstream_rq_completed: number;
  upstream_rq_active: number;
  upstream_rq_pending_total: number;
  upstream_rq_pending_active: number;
  upstream_rq_pending_overflow: number;
  upstream_rq_retry: number;
  upstream_rq_retry_success: number;
  upstream_rq_retry_overflow: number;
  upstream_rq_retry_limit_exceeded: number;
  upstream_rq_timeout: number;
  upstream_rq_per_try_timeout: number;
  upstream_rq_rx_reset: number;
  upstream_rq_tx_reset: number;
  upstream_cx_total: number;
  upstream_cx_active: number;
  upstream_cx_connect_fail: number;
  upstream_cx_connect_timeout: number;
  upstream_cx_overflow: number;
  upstream_cx_destroy: number;
  upstream_cx_none_healthy: number;
  upstream_cx_http1_total: number;
  upstream_cx_http2_total: number;
  upstream_cx_max_duration_reached: number;
  membership_change: number;
  lb_healthy_panic: number;
  update_attempt: number;
  update_success: number;
  update_empty: number;
  retry_or_shadow_abandoned: number;
}

const COUNTERS: (keyof ClusterStats)[] = [
  'upstream_rq_total',
  'upstream_rq_completed',
  'upstream_rq_pending_total',
  'upstream_rq_pending_overflow',
  'upstream_rq_retry',
  'upstream_rq_retry_success',
  'upstream_rq_retry_overflow',
  'upstream_rq_retry_limit_exceeded',
  'upstream_rq_timeout',
  'upstream_rq_per_try_timeout',
  'upstream_rq_rx_reset',
  'upstream_rq_tx_reset',
  'upstream_cx_total',
  'upstream_cx_connect_fail',
  'upstream_cx_connect_timeout',
  'upstream_cx_overflow',
  'upstream_cx_destroy',
  'upstream_cx_none_healthy',
  'upstream_cx_http1_total',
  'upstream_cx_http2_total',
  'upstream_cx_max_duration_reached',
  'membership_change',
  'lb_healthy_panic',
  'update_attempt',
  'update_success',
  'update_empty',
  'retry_or_shadow_abandoned',
];
const GAUGES: (keyof ClusterStats)[] = ['upstream_rq_active', 'upstream_rq_pending_active', 'upstream_cx_active'];

export class Cluster {
  readonly spec: ClusterSpec;
  readonly store: StatsStore;
  readonly stats: ClusterStats;
  /** The resource as received (config_dump). */
  readonly json: EnvoyCluster;
  versionInfo: string;
  lastUpdated: string;
  readonly addedViaApi: boolean;
  hosts: Host[] = [];
  /** The ClusterLoadAssignment last applied (config_dump ?include_eds), EDS clusters only. */
  assignment: ClusterLoadAssignment | undefined;
  /** An EDS cluster is warming until its first ClusterLoadAssignment arrives. */
  warm: boolean;
  /** Requests, pending requests, retries and connections the circuit breakers limit (process-wide). */
  readonly resources: ResourceManager;
  private lb: LoadBalancer | undefined;
  /** The last balancer a retry under previous_priorities used, by its excluded priorities (lbAvoiding). */
  private avoiding: { key: string; lb: LoadBalancer | undefined } | undefined;
  /** ORIGINAL_DST: hosts created per destination address (original-dst.ts). */
  private readonly originalDst: OriginalDstHosts | undefined;
  /** Outlier detection, when the cluster configures it. */
  readonly outlier: OutlierDetector | undefined;
  private panic = false;
  private scope: StatScope;
  private codeStats = new Int32Array(600).fill(-1);
  private classStats = new Int32Array(6).fill(-1);
  /** Counters filters charge to the cluster, made on first use (grpc_stats' `grpc.*`). */
  private filterCounters: Map<string, number> | undefined;
  private dnsTimer: NodeJS.Timeout | undefined;
  private slowStartTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly log: Logger;

  /** Upstream TLS of this cluster (certificates looked up per connection: rotation applies to new ones). */
  private readonly upstreamTls: UpstreamTls | undefined;

  constructor(
    spec: ClusterSpec,
    json: EnvoyCluster,
    store: StatsStore,
    o: { versionInfo: string; addedViaApi: boolean; log: Logger; secrets?: SecretStore | undefined; sharing?: WorkerSharing | undefined },
  ) {
    this.resources = new ResourceManager(spec.name, o.sharing?.counters);
    this.spec = spec;
    this.upstreamTls = spec.tls ? new UpstreamTls(spec.tls, o.secrets ?? new SecretStore(o.log)) : undefined;
    this.json = json;
    this.store = store;
    this.versionInfo = o.versionInfo;
    this.lastUpdated = new Date().toISOString();
    this.addedViaApi = o.addedViaApi;
    this.log = o.log;
    this.scope = new StatScope(store, `cluster.${spec.observabilityName}.`);
    const s = {} as ClusterStats;
    for (const k of COUNTERS) s[k] = this.scope.counter(k);
    for (const k of GAUGES) s[k] = this.scope.gauge(k);
    s.upstream_cx_connect_ms = this.scope.histogram('upstream_cx_connect_ms');
    s.upstream_cx_length_ms = this.scope.histogram('upstream_cx_length_ms');
    s.upstream_rq_time = this.scope.dynamicHistogram('upstream_rq_time');
    s.external_upstream_rq_time = this.scope.dynamicHistogram('external.upstream_rq_time');
    this.stats = s;
    this.scope.computedGauge('membership_total', () => this.hosts.length);
    // Envoy's partition of a host set: excluded (DRAINING) hosts are neither healthy nor degraded.
    this.scope.computedGauge('membership_healthy', () => this.countHealth((h) => h.healthy && !h.excluded));
    this.scope.computedGauge('membership_degraded', () => this.countHealth((h) => h.degraded));
    this.scope.computedGauge('membership_excluded', () => this.countHealth((h) => h.excluded));
    this.scope.computedGauge('max_host_weight', () => this.hosts.reduce((m, h) => Math.max(m, h.weight), 0));
    if (spec.outlier) {
      this.outlier = new OutlierDetector(spec.outlier, store, this.scope, { sharing: o.sharing, cluster: spec.name });
      this.outlier.onChange = () => this.rebuildLb();
    }
    for (const t of ['cx_open', 'cx_pool_open', 'rq_open', 'rq_pending_open', 'rq_retry_open']) {
      this.scope.computedGauge(`circuit_breakers.default.${t}`, () => this.breakerOpen(t));
      this.scope.computedGauge(`circuit_breakers.high.${t}`, () => 0);
    }
    this.warm = spec.type !== 'EDS';
    if (spec.originalDst) {
      const invalid = this.scope.counter('original_dst_host_invalid');
      this.originalDst = new OriginalDstHosts(spec.originalDst, {
        onChange: (hosts) => {
          this.hosts = hosts;
          this.outlier?.setHosts(hosts);
          this.store.inc(this.stats.membership_change);
        },
        onInvalid: () => this.store.inc(invalid),
      });
    }
    if (spec.loadAssignment) {
      const hosts = parseLoadAssignment(spec.loadAssignment, `cluster '${spec.name}'.load_assignment`, spec.type !== 'STATIC');
      if (spec.type === 'STATIC') this.setHosts(hosts);
      else this.startDns(hosts);
    }
  }

  get name(): string {
    return this.spec.name;
  }

  private countHealth(f: (h: Host) => boolean): number {
    let n = 0;
    for (const h of this.hosts) if (f(h)) n++;
    return n;
  }

  private breakerOpen(t: string): number {
    const th = this.spec.thresholds;
    switch (t) {
      case 'cx_open':
        return this.resources.total(CX) >= th.maxConnections ? 1 : 0;
      case 'rq_open':
        return this.resources.total(RQ) >= th.maxRequests ? 1 : 0;
      case 'rq_retry_open':
        return this.resources.total(RETRY) >= th.maxRetries ? 1 : 0;
      case 'rq_pending_open':
        return this.resources.total(PENDING) >= th.maxPendingRequests ? 1 : 0;
      default:
        return 0;
    }
  }

  /** Replaces the host set, keeping Host objects (pools, counters) for addresses that stay. */
  setHosts(specs: HostSpec[]): void {
    const old = new Map(this.hosts.map((h) => [h.key, h]));
    const next: Host[] = [];
    let changed = specs.length !== this.hosts.length;
    for (const s of specs) {
      const probe = new Host(s.address, s.port);
      const existing = old.get(probe.key);
      const h = existing ?? probe;
      if (!existing) changed = true;
      old.delete(h.key);
      h.weight = s.weight;
      h.health = s.health;
      h.priority = s.priority;
      h.hostname = s.hostname;
      h.locality = s.locality;
      h.workload = s.workload;
      next.push(h);
    }
    this.hosts = next;
    // Removed hosts: requests in flight finish on their pooled connections; idle ones close.
    for (const h of old.values()) closePools(h);
    // Envoy counts membership_change when hosts are added or removed, not for the initial empty set.
    if (changed) this.store.inc(this.stats.membership_change);
    this.outlier?.setHosts(next);
    this.rebuildLb();
    this.warm = true;
  }

  /** Applies a ClusterLoadAssignment from EDS. */
  applyAssignment(cla: ClusterLoadAssignment, specs: HostSpec[]): void {
    this.assignment = cla;
    this.store.inc(this.stats.update_attempt);
    this.store.inc(this.stats.update_success);
    if (specs.length === 0) this.store.inc(this.stats.update_empty);
    this.setHosts(specs);
  }

  private rebuildLb(): void {
    // Lowest priority level with a usable host, healthy hosts first, degraded ones when the level has none.
    // Panic mode (balance over all hosts of that level) as Envoy's LoadBalancerBase::isHostSetInPanic: healthy
    // plus degraded hosts below healthy_panic_threshold percent of the level's hosts, excluded (DRAINING) ones
    // not counted; a threshold of 0 (Istio's) never panics.
    const byPriority = new Map<number, Host[]>();
    for (const h of this.hosts) {
      let l = byPriority.get(h.priority);
      if (!l) byPriority.set(h.priority, (l = []));
      l.push(h);
    }
    const levels = [...byPriority.keys()].sort((a, b) => a - b);
    let eligible: Host[] = [];
    this.panic = false;
    for (const p of levels) {
      const all = byPriority.get(p) ?? [];
      const healthy = all.filter((h) => h.healthy && !h.excluded);
      const degraded = all.filter((h) => h.degraded);
      if (healthy.length > 0 || degraded.length > 0 || p === levels[levels.length - 1]) {
        const counted = all.reduce((n, h) => (h.excluded ? n : n + 1), 0);
        const available = counted === 0 ? 0 : ((healthy.length + degraded.length) * 100) / counted;
        if (all.length > 0 && available < this.spec.panicThreshold) {
          this.panic = true;
          eligible = all;
        } else eligible = healthy.length > 0 ? healthy : degraded;
        break;
      }
    }
    this.lb = this.balancer(eligible);
    this.avoiding = undefined;
  }

  /** The cluster's lb_policy over `eligible`. */
  private balancer(eligible: Host[]): LoadBalancer {
    const weightOf = this.slowStartWeights(eligible);
    switch (this.spec.lbPolicy) {
      case LB_LEAST_REQUEST:
        return new LeastRequestLoadBalancer(eligible, Math.random, this.spec.choiceCount, this.spec.activeRequestBias, weightOf);
      case LB_RANDOM:
        return new RandomLoadBalancer(eligible);
      case LB_RING_HASH:
        return new RingHashLoadBalancer(eligible, this.spec.minRingSize, this.spec.maxRingSize);
      case LB_MAGLEV:
        return new MaglevLoadBalancer(eligible, this.spec.maglevTableSize);
      default:
        return new RoundRobinLoadBalancer(eligible, Math.random, weightOf);
    }
  }

  /**
   * Slow start: while some eligible host is younger than the window, weights are scaled by age and the
   * balancer is rebuilt periodically (every tenth of the window, at most once per 100 ms) until none is.
   */
  private slowStartWeights(eligible: readonly Host[]): WeightOf {
    const ss = this.spec.slowStart;
    if (!ss) return EDS_WEIGHT;
    const now = performance.now();
    let youngest = Infinity;
    for (const h of eligible) youngest = Math.min(youngest, now - h.createdAt);
    if (youngest >= ss.windowMs) return EDS_WEIGHT;
    if (!this.slowStartTimer && !this.closed) {
      this.slowStartTimer = setTimeout(
        () => {
          this.slowStartTimer = undefined;
          if (!this.closed) this.rebuildLb();
        },
        Math.max(100, Math.min(ss.windowMs / 10, ss.windowMs - youngest)),
      );
      this.slowStartTimer.unref();
    }
    return (h) => slowStartWeight(h.weight, now - h.createdAt, ss);
  }

  /**
   * Upstream connections open or opening for the cluster (max_connections is per cluster): this worker's
   * pools' (opening ones included) and the other workers' connected ones.
   */
  openConnections(): number {
    let n = 0;
    for (const h of this.hosts) {
      const p = h.pool as { size?: number } | undefined;
      n += p?.size ?? (p ? h.cxActive : 0);
    }
    return n + this.resources.total(CX) - this.resources.local(CX);
  }

  /**
   * A host for a new request, or undefined (503 no healthy upstream). `hash`: the route hash policy's key;
   * `ctx`: the downstream (request headers, local address), read by ORIGINAL_DST clusters only.
   */
  chooseHost(hash?: bigint, ctx?: ChooseContext, excludedPriorities?: ReadonlySet<number>): Host | undefined {
    if (this.originalDst) return this.originalDst.choose(ctx);
    if (excludedPriorities !== undefined && excludedPriorities.size > 0) {
      const lb = this.lbAvoiding(excludedPriorities);
      if (lb) return lb.choose(hash);
    }
    if (this.panic) this.store.inc(this.stats.lb_healthy_panic);
    return this.lb?.choose(hash);
  }

  /**
   * A retry's balancer under previous_priorities: the lowest priority level not excluded that has a healthy (or
   * else degraded) host; undefined when no such level exists, and the retry then uses the cluster's own choice,
   * as Envoy resets the excluded set when nothing else is available. Cached until the hosts change.
   */
  private lbAvoiding(excluded: ReadonlySet<number>): LoadBalancer | undefined {
    const key = [...excluded].sort((a, b) => a - b).join(',');
    if (this.avoiding?.key === key) return this.avoiding.lb;
    let best: number | undefined;
    for (const h of this.hosts) {
      if (excluded.has(h.priority) || !((h.healthy && !h.excluded) || h.degraded)) continue;
      if (best === undefined || h.priority < best) best = h.priority;
    }
    let lb: LoadBalancer | undefined;
    if (best !== undefined) {
      const level = this.hosts.filter((h) => h.priority === best);
      const healthy = level.filter((h) => h.healthy && !h.excluded);
      lb = this.balancer(healthy.length > 0 ? healthy : level.filter((h) => h.degraded));
    }
    this.avoiding = { key, lb };
    return lb;
  }

  /** A raw connection to a host (tcp_proxy), through the cluster's upstream TLS when it has one. */
  connectRaw(h: Host, cb: (err: Error | null, sock: Socket | null) => void): void {
    if (this.upstreamTls) this.upstreamTls.connect({ host: h.address, port: h.port, hostname: h.hostname, timeoutMs: this.spec.connectTimeoutMs }, [], cb);
    else connectPlain(h.address, h.port, this.spec.connectTimeoutMs, cb);
  }

  /**
   * The pool of a host, created on first use: a node:http2 session for HTTP/2 clusters, and with
   * use_downstream_protocol_config for requests that came over HTTP/2 (`downstreamH2`); HTTP/1.1 otherwise.
   */
  poolFor(h: Host, downstreamH2 = false): UpstreamPool {
    if (this.spec.http2) return (h.pool ??= this.h2PoolFor(h));
    if (downstreamH2 && this.spec.useDownstreamProtocol) return (h.h2Pool ??= this.h2PoolFor(h));
    if (h.pool) return h.pool;
    const tls = this.upstreamTls;
    // Our own HTTP/1.1 client: request heads go out exactly as Envoy's encoder writes them (undici adds
    // `connection: keep-alive` and moves content-length), and pooling follows the cluster's settings.
    const pool = new H1Pool(h.address, h.port, {
      connectTimeoutMs: this.spec.connectTimeoutMs,
      idleTimeoutMs: this.spec.idleTimeoutMs,
      maxRequestsPerConnection: this.spec.maxRequestsPerConnection,
      maxConnectionDurationMs: this.spec.maxConnectionDurationMs,
      // max_connections is per cluster (Envoy ResourceManager): a host opens another connection only while the
      // cluster has room, or when it has none at all.
      ...(this.spec.thresholds.maxConnections < 1_000_000
        ? { maxConnections: this.spec.thresholds.maxConnections, canCreateConnection: () => this.openConnections() < this.spec.thresholds.maxConnections }
        : {}),
      ...(this.spec.tcpKeepaliveMs !== undefined ? { tcpKeepaliveMs: this.spec.tcpKeepaliveMs } : {}),
      // Upstream TLS: the cluster's UpstreamTlsContext (SNI, verification, rotated certificates).
      ...(tls
        ? {
            connector: (cb: (err: Error | null, socket?: Socket) => void): void =>
              tls.connect({ host: h.address, port: h.port, hostname: h.hostname, timeoutMs: this.spec.connectTimeoutMs }, ['http/1.1'], (err, sock) =>
                err || !sock ? cb(err ?? new Error('TLS connect failed')) : cb(null, sock),
              ),
          }
        : {}),
      events: this.poolEvents(h, true),
      log: this.log,
    });
    h.pool = pool;
    return pool;
  }

  private h2PoolFor(h: Host): H2Pool {
    const tls = this.upstreamTls;
    return new H2Pool(`${tls ? 'https' : 'http'}://${h.key}`, {
      connectTimeoutMs: this.spec.connectTimeoutMs,
      idleTimeoutMs: this.spec.idleTimeoutMs,
      maxConnectionDurationMs: this.spec.maxConnectionDurationMs,
      events: this.poolEvents(h, false),
      settings: this.spec.http2Settings,
      // Upstream TLS offers h2 by ALPN unless the context names its own protocols (Envoy's HTTP/2 ALPN fallback).
      ...(tls ? { connector: () => tls.open({ host: h.address, port: h.port, hostname: h.hostname, timeoutMs: this.spec.connectTimeoutMs }, ['h2']) } : {}),
    });
  }

  /** Connection accounting shared by the HTTP/1.1 and HTTP/2 pools: per host and cluster-wide stats. */
  private poolEvents(h: Host, http1: boolean): PoolEvents {
    const s = this.stats;
    const st = this.store;
    return {
      onConnect: (startedAt?: number): void => {
        if (startedAt !== undefined) st.record(s.upstream_cx_connect_ms, performance.now() - startedAt);
        h.cxTotal++;
        h.cxActive++;
        this.resources.inc(CX);
        st.inc(s.upstream_cx_total);
        st.inc(http1 ? s.upstream_cx_http1_total : s.upstream_cx_http2_total);
        st.inc(s.upstream_cx_active);
      },
      onDisconnect: (startedAt?: number): void => {
        if (startedAt !== undefined) st.record(s.upstream_cx_length_ms, performance.now() - startedAt);
        h.cxActive--;
        this.resources.dec(CX);
        st.dec(s.upstream_cx_active);
        st.inc(s.upstream_cx_destroy);
      },
      onConnectError: (err: { code?: string }, startedAt?: number): void => {
        // A client that never connected still ends its length timespan (Envoy's ActiveClient).
        if (startedAt !== undefined) st.record(s.upstream_cx_length_ms, performance.now() - startedAt);
        h.cxConnectFail++;
        st.inc(s.upstream_cx_total);
        st.inc(s.upstream_cx_connect_fail);
        if (err.code === 'UND_ERR_CONNECT_TIMEOUT') st.inc(s.upstream_cx_connect_timeout);
      },
      onMaxDurationReached: (): void => st.inc(s.upstream_cx_max_duration_reached),
    };
  }

  /**
   * The router's upstream_rq_time (CodeStatsImpl::chargeResponseTiming): from the end of the downstream request
   * to the end of the upstream response. Every request is external here (x-envoy-internal is never set).
   */
  recordRqTime(ms: number): void {
    this.store.record(this.stats.upstream_rq_time, ms);
    this.store.record(this.stats.external_upstream_rq_time, ms);
  }

  /** A counter in the cluster's scope (`cluster.<name>.` + name), made on first use (Envoy's counterFromElements on the cluster's stats scope). */
  counter(name: string): number {
    const m = (this.filterCounters ??= new Map<string, number>());
    let i = m.get(name);
    if (i === undefined) m.set(name, (i = this.scope.counter(name)));
    return i;
  }

  /** Counts an upstream (or router-generated) response code: upstream_rq_<code>, _<N>xx, _completed. */
  chargeStatus(code: number): void {
    const st = this.store;
    let i = code >= 0 && code < 600 ? (this.codeStats[code] ?? -1) : -1;
    if (i < 0 && code >= 0 && code < 600) this.codeStats[code] = i = this.scope.counter(`upstream_rq_${code}`);
    if (i >= 0) st.inc(i);
    const cls = Math.floor(code / 100);
    if (cls >= 1 && cls <= 5) {
      let j = this.classStats[cls] ?? -1;
      if (j < 0) this.classStats[cls] = j = this.scope.counter(`upstream_rq_${cls}xx`);
      st.inc(j);
    }
    st.inc(this.stats.upstream_rq_completed);
  }

  private startDns(seeds: HostSpec[]): void {
    const last = new Map<string, HostSpec[]>();
    const resolve = async (): Promise<void> => {
      const out: HostSpec[] = [];
      let ttlMs: number | undefined;
      for (const s of seeds) {
        if (isIp(s.address)) {
          out.push(s);
          continue;
        }
        try {
          const addrs = await resolveHostname(s.address);
          const use = this.spec.type === 'LOGICAL_DNS' ? addrs.slice(0, 1) : addrs;
          const hosts = use.map((a) => ({ ...s, address: a.address, hostname: s.address }));
          last.set(s.address, hosts);
          out.push(...hosts);
          for (const a of use) if (a.ttl !== undefined) ttlMs = Math.min(ttlMs ?? Infinity, a.ttl * 1000);
        } catch (e) {
          // A failed refresh keeps the hosts of the last successful resolution, as Envoy's DNS clusters do.
          out.push(...(last.get(s.address) ?? []));
          this.log.warn({ cluster: this.name, host: s.address, err: (e as Error).message }, 'DNS resolution failed');
        }
      }
      if (this.closed) return;
      this.setHosts(out);
      // respect_dns_ttl: refresh when the records expire, but not more often than dns_min_refresh_rate (5 s).
      const next = this.spec.respectDnsTtl && ttlMs !== undefined && ttlMs > 0 ? Math.max(ttlMs, 5000) : this.spec.dnsRefreshMs;
      this.dnsTimer = setTimeout(() => void resolve(), next);
      this.dnsTimer.unref();
    };
    void resolve();
  }

  /**
   * A modified EDS cluster keeps the endpoints of the one it replaces (Envoy reuses the cached
   * ClusterLoadAssignment), so it is warm at once. Pools are not shared: the old cluster's pools finish
   * their requests and close; the new settings (connect timeout, limits) apply to new connections.
   */
  inheritFrom(old: Cluster): void {
    if (this.spec.type === 'EDS' && old.spec.type === 'EDS' && old.assignment && old.spec.edsServiceName === this.spec.edsServiceName) {
      this.assignment = old.assignment;
      this.setHosts(
        old.hosts.map((h) => ({
          address: h.address,
          port: h.port,
          weight: h.weight,
          health: h.health,
          priority: h.priority,
          hostname: h.hostname,
          locality: h.locality,
          workload: h.workload,
        })),
      );
    }
  }

  /** Stops DNS, releases stats and closes pools (in-flight requests finish). */
  close(): void {
    this.closed = true;
    if (this.dnsTimer) clearTimeout(this.dnsTimer);
    this.originalDst?.close();
    this.outlier?.close();
    if (this.slowStartTimer) clearTimeout(this.slowStartTimer);
    this.scope.releaseAll();
    for (const h of this.hosts) closePools(h);
  }

  /**
   * Health flags as /clusters prints them (Envoy HostUtility::healthFlagsToString, flags in Envoy's order):
   * UNHEALTHY and TIMEOUT set FAILED_EDS_HEALTH, DEGRADED sets DEGRADED_EDS_HEALTH, DRAINING sets
   * EDS_STATUS_DRAINING (Envoy's exclude_host_in_eds_status_draining, on by default). Hosts leave as soon as
   * service discovery drops them (no active health checking), so /pending_dynamic_removal never appears.
   */
  static healthFlags(h: Host): string {
    let out = '';
    if (h.outlierEjected) out += '/failed_outlier_check';
    if (h.health === HEALTH_UNHEALTHY || h.health === HEALTH_TIMEOUT) out += '/failed_eds_health';
    if (h.health === HEALTH_DEGRADED) out += '/degraded_eds_health';
    if (h.health === HEALTH_DRAINING) out += '/eds_status_draining';
    return out || 'healthy';
  }
}

/** A host that left (or its cluster went): requests in flight finish on their pooled connections; idle ones close. */
function closePools(h: Host): void {
  for (const p of [h.pool, h.h2Pool]) if (p) p.close().catch(() => undefined);
  h.pool = undefined;
  h.h2Pool = undefined;
}
