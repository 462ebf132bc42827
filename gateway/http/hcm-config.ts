// envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager: validated and reduced
// to what the request path needs. Fields and HTTP filters that would change behaviour and are not
// implemented make the listener NACKed; knobs with no observable effect here are accepted.
import { durationMs, unpackAny, type envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError, anyType } from '../xds/json.ts';
import { parseHttp2Options, type Http2Settings } from '../xds/http2-options.ts';
import { compileRouteConfig, websocketEnabled, type CompiledRouteConfig } from '../router/route-config.ts';
import { parseXfcc, type XfccConfig } from '../tls/xfcc.ts';
import { parseHttpRbac, type RbacFilter } from '../rbac/engine.ts';
import { parseJwtAuthn, type JwtAuthnFilter } from '../jwt/filter.ts';
import { parseExtAuthz, type ExtAuthzSpec } from '../extauthz/config.ts';
import { compileAccessLogs, type CompiledAccessLog } from '../access-log/access-log-config.ts';
import { parseRequestIdExtension, parseTracing, type TracingConfig } from '../tracing/config.ts';
import type { IstioStatsConfig } from '../stats/istio-metrics.ts';
import { parsePluginConfig } from '../stats/plugin-config.ts';
import { parseGrpcStatsConfig, type GrpcStatsConfig } from './filters/grpc-stats.ts';

/** An HTTP filter that acts on requests, validated: what the connection manager builds its filter factories from. */
export type HttpFilterSpec =
  | { kind: 'rbac'; rbac: RbacFilter }
  | { kind: 'jwt'; jwt: JwtAuthnFilter }
  | { kind: 'ext_authz'; extAuthz: ExtAuthzSpec }
  | { kind: 'fault' }
  | { kind: 'cors' }
  | { kind: 'grpc_stats'; grpcStats: GrpcStatsConfig }
  | { kind: 'istio_stats'; stats: IstioStatsConfig };

export const SERVER_OVERWRITE = 0;
export const SERVER_APPEND_IF_ABSENT = 1;
export const SERVER_PASS_THROUGH = 2;

export interface HcmSpec {
  statPrefix: string;
  /** access_log: the loggers every finished stream is offered to. */
  accessLogs: readonly CompiledAccessLog[];
  /** RDS name, or undefined with an inline route_config. */
  rdsName: string | undefined;
  inlineRoutes: CompiledRouteConfig | undefined;
  serverName: string;
  serverHeaderTransformation: number;
  useRemoteAddress: boolean;
  xffNumTrustedHops: number;
  skipXffAppend: boolean;
  generateRequestId: boolean;
  preserveExternalRequestId: boolean;
  acceptHttp10: boolean;
  /**
   * proxy_100_continue (istiod sets it on gateways): `Expect: 100-continue` goes upstream and the upstream's
   * `100 Continue` is relayed; without it the proxy answers `100 Continue` itself and removes Expect.
   */
  proxy100Continue: boolean;
  normalizePath: boolean;
  mergeSlashes: boolean;
  websocket: boolean;
  /** `tracing` (with request_id_extension's settings): undefined when the HCM does not trace. */
  tracing: TracingConfig | undefined;
  suppressEnvoyHeaders: boolean;
  /** The HTTP filters that act on requests, in chain order (the router, last, is not listed). */
  filters: HttpFilterSpec[];
  idleTimeoutMs: number;
  maxRequestHeadersKb: number;
  /** codec_type: AUTO serves HTTP/1.1 and HTTP/2 (preface or ALPN), HTTP1 only HTTP/1.1, HTTP2 only HTTP/2. */
  codec: 'AUTO' | 'HTTP1' | 'HTTP2';
  /** http2_protocol_options: the SETTINGS HTTP/2 clients get. */
  http2: Http2Settings;
  maxHeadersCount: number;
  /** forward_client_cert_details / set_current_client_cert_details (x-forwarded-client-cert). */
  xfcc: XfccConfig;
}

// HTTP filters Istio puts on gateway HCMs that have no effect on traffic here: peer metadata exchange and ALPN
// for TLS upstreams. `istio.stats` is one only in a form other than stats.PluginConfig (the Wasm plugin of old
// Istio releases).
const NOOP_FILTERS = new Set(['istio.metadata_exchange', 'istio.alpn', 'istio.stats', 'envoy.filters.http.peer_metadata', 'envoy.filters.http.wasm']);
const NOOP_FILTER_TYPES = new Set(['io.istio.http.peer_metadata.Config']);

type HttpConnectionManager = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
type HttpFilter = envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;

const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';
const FAULT_TYPE = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
const CORS_TYPE = 'envoy.extensions.filters.http.cors.v3.Cors';
const GRPC_STATS_TYPE = 'envoy.extensions.filters.http.grpc_stats.v3.FilterConfig';
const RBAC_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBAC';
const JWT_TYPE = 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
const EXT_AUTHZ_TYPE = 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
const ISTIO_STATS_TYPE = 'stats.PluginConfig';

// config_discovery is rejected with its own message below.
const checkHttpFilter = fieldTable('envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter', {
  name: true,
  typed_config: true,
  is_optional: true,
  disabled: true,
});
const checkRouter = fieldTable(ROUTER_TYPE, {
  suppress_envoy_headers: true,
  start_child_span: true,
  dynamic_stats: 'the per-cluster request stats are always kept here',
});
const checkCors = fieldTable(CORS_TYPE, {});

/** The filter a typed_config (or, without one, a well-known name) stands for. */
function filterKind(name: string, type: string): string {
  if (type) return type;
  if (name === 'envoy.filters.http.router') return ROUTER_TYPE;
  if (name === 'envoy.filters.http.fault') return FAULT_TYPE;
  if (name === 'envoy.filters.http.cors') return CORS_TYPE;
  if (name === 'envoy.filters.http.grpc_stats') return GRPC_STATS_TYPE;
  return '';
}

/**
 * Envoy's HCM filter list: each filter validated, in order, the router last. A filter this proxy does not run
 * NACKs the listener unless it is optional (is_optional, as Envoy skips an unknown optional filter); a disabled
 * one is skipped (Istio does not enable filters per route).
 */
function checkHttpFilters(
  filters: readonly HttpFilter[],
  where: string,
): { suppressEnvoyHeaders: boolean; startChildSpan: boolean; filters: HttpFilterSpec[] } {
  if (filters.length === 0) throw new ConfigError(`${where}: the HTTP filter chain is empty (the router filter is required)`);
  let suppressEnvoyHeaders = false;
  let startChildSpan = false;
  const out: HttpFilterSpec[] = [];
  filters.forEach((f, i) => {
    const w = `${where}[${i}]`;
    if (f.config_discovery !== undefined) throw new ConfigError(`${w}: extension config discovery (ECDS) is not supported by this proxy`);
    checkHttpFilter(f, w);
    const name = f.name ?? '';
    const cfg = f.typed_config ?? { '@type': '' };
    const type = filterKind(name, anyType(cfg));
    const last = i === filters.length - 1;
    if (type === ROUTER_TYPE) {
      if (!last) throw new ConfigError(`${w}: the router filter must be the last HTTP filter`);
      const router = unpackAny(cfg, `type.googleapis.com/${ROUTER_TYPE}`);
      checkRouter(router, `${w}.typed_config`);
      suppressEnvoyHeaders = router.suppress_envoy_headers === true;
      startChildSpan = router.start_child_span === true;
      return;
    }
    if (last) throw new ConfigError(`${w}: the last HTTP filter must be the router (got '${name}')`);
    if (f.disabled === true) return;
    const tc = `${w}.typed_config`;
    if (type === RBAC_TYPE) out.push({ kind: 'rbac', rbac: parseHttpRbac(unpackAny(cfg, `type.googleapis.com/${RBAC_TYPE}`), tc) });
    else if (type === JWT_TYPE) out.push({ kind: 'jwt', jwt: parseJwtAuthn(unpackAny(cfg, `type.googleapis.com/${JWT_TYPE}`), tc) });
    else if (type === EXT_AUTHZ_TYPE) out.push({ kind: 'ext_authz', extAuthz: parseExtAuthz(unpackAny(cfg, `type.googleapis.com/${EXT_AUTHZ_TYPE}`), tc) });
    else if (type === FAULT_TYPE) {
      // The filter acts on the route's fault (typed_per_filter_config); filter-level faults would act on every request.
      const fault = f.typed_config ? unpackAny(cfg, `type.googleapis.com/${FAULT_TYPE}`) : {};
      if (fault.abort !== undefined || fault.delay !== undefined) throw new ConfigError(`${w}: listener-level fault injection is not supported by this proxy`);
      out.push({ kind: 'fault' });
    } else if (type === CORS_TYPE) {
      if (f.typed_config) checkCors(unpackAny(cfg, `type.googleapis.com/${CORS_TYPE}`), tc);
      out.push({ kind: 'cors' });
    } else if (type === GRPC_STATS_TYPE)
      out.push({ kind: 'grpc_stats', grpcStats: parseGrpcStatsConfig(f.typed_config ? unpackAny(cfg, `type.googleapis.com/${GRPC_STATS_TYPE}`) : {}, tc) });
    else if (type === ISTIO_STATS_TYPE)
      out.push({ kind: 'istio_stats', stats: parsePluginConfig(unpackAny(cfg, `type.googleapis.com/${ISTIO_STATS_TYPE}`), tc) });
    else if (!NOOP_FILTERS.has(name) && !NOOP_FILTER_TYPES.has(type) && f.is_optional !== true)
      throw new ConfigError(`${w}: HTTP filter '${name}'${type ? ` (${type})` : ''} is not supported by this proxy`);
  });
  return { suppressEnvoyHeaders, startChildSpan, filters: out };
}

const ONLY_ZERO = 'only 0s (none, what Istio sets) is accepted: any other value is NACKed';
const ONLY_FALSE = 'only false is accepted: true is NACKed';

// Not listed, so NACKed: always_set_request_id_in_response (responses do not carry x-request-id here) and
// represent_ipv4_remote_address_as_ipv4_mapped_ipv6 (IPv4 peers are always plain IPv4).
const checkHcm = fieldTable('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', {
  stat_prefix: true,
  rds: true,
  route_config: true,
  http_filters: true,
  tracing: true,
  use_remote_address: true,
  xff_num_trusted_hops: true,
  skip_xff_append: true,
  forward_client_cert_details: true,
  set_current_client_cert_details: true,
  server_name: true,
  server_header_transformation: true,
  normalize_path: true,
  merge_slashes: true,
  http_protocol_options: true,
  upgrade_configs: true,
  common_http_protocol_options: true,
  generate_request_id: true,
  preserve_external_request_id: true,
  max_request_headers_kb: true,
  proxy_100_continue: true,
  codec_type: true,
  http2_protocol_options: true,
  stream_idle_timeout: ONLY_ZERO,
  request_timeout: ONLY_ZERO,
  request_headers_timeout: ONLY_ZERO,
  path_with_escaped_slashes_action:
    'only KEEP_UNCHANGED and IMPLEMENTATION_SPECIFIC_DEFAULT are accepted (escaped slashes are kept, as both do); the other actions are NACKed',
  request_id_extension: true,
  internal_address_config:
    'not applied: every request on a use_remote_address listener is external, as in Envoy >= 1.33 without this field (internal-only headers are stripped, x-envoy-internal is never set)',
  delayed_close_timeout: 'a connection closes once its last response is written, without waiting for the peer',
  drain_timeout: "draining follows the proxy's --drain-seconds (on shutdown and for removed listeners), not this timeout",
  add_user_agent: ONLY_FALSE,
  via: 'only empty is accepted: a via header value is NACKed',
  strip_matching_host_port: ONLY_FALSE,
  strip_any_host_port: ONLY_FALSE,
  append_x_forwarded_port: ONLY_FALSE,
  stream_error_on_invalid_http_message:
    'an invalid HTTP/1 message always ends its connection after the error reply, whichever value (Envoy cannot resume an HTTP/1 stream either)',
  // access_log_options (periodic and per-request flushes) is NACKed: a line is written when its stream ends.
  access_log: true,
});
const checkRds = fieldTable('envoy.extensions.filters.network.http_connection_manager.v3.Rds', { config_source: true, route_config_name: true });
// header_key_format is rejected below with its own message; default_host_for_http_10 (a Host for HTTP/1.0
// requests without one) and allow_chunked_length (Content-Length with chunked is always a 400 here) are NACKed.
const checkHttp1 = fieldTable('envoy.config.core.v3.Http1ProtocolOptions', { accept_http_10: true }, 'HttpConnectionManager.http_protocol_options');
const checkUpgrade = fieldTable('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig', {
  upgrade_type: true,
  enabled: true,
});
// max_connection_duration, max_stream_duration and max_requests_per_connection are not enforced on downstream
// connections here: NACKed.
const checkCommon = fieldTable(
  'envoy.config.core.v3.HttpProtocolOptions',
  {
    idle_timeout: true,
    max_headers_count: true,
    headers_with_underscores_action: 'only ALLOW (headers with underscores pass) is accepted; REJECT_REQUEST and DROP_HEADER are NACKed',
  },
  'HttpConnectionManager.common_http_protocol_options',
);

/** Validates an HCM (its Any unpacked) for listener `listener`. */
export function parseHcm(h: HttpConnectionManager, where: string): HcmSpec {
  checkHcm(h, where);
  const accessLogs = compileAccessLogs(h.access_log, `${where}.access_log`);
  const statPrefix = h.stat_prefix ?? '';
  let rdsName: string | undefined;
  let inlineRoutes: CompiledRouteConfig | undefined;
  if (h.rds !== undefined) {
    const rds = h.rds;
    checkRds(rds, `${where}.rds`);
    if (rds.config_source?.ads === undefined) throw new ConfigError(`${where}.rds.config_source: only ADS is supported`);
    rdsName = rds.route_config_name ?? '';
  } else if (h.route_config !== undefined) {
    inlineRoutes = compileRouteConfig(h.route_config);
  } else throw new ConfigError(`${where}: needs rds or route_config (scoped routes are not supported)`);
  const { suppressEnvoyHeaders, startChildSpan, filters } = checkHttpFilters(h.http_filters ?? [], `${where}.http_filters`);
  const tracing = parseTracing(h.tracing, parseRequestIdExtension(h.request_id_extension, `${where}.request_id_extension`), `${where}.tracing`);
  // Without spawn_upstream_span, the router's (deprecated) start_child_span decides whether attempts get spans.
  if (tracing && h.tracing?.spawn_upstream_span === undefined) tracing.spawnUpstreamSpan = startChildSpan;
  const http1 = h.http_protocol_options ?? {};
  if (http1.header_key_format !== undefined)
    throw new ConfigError(`${where}.http_protocol_options.header_key_format (header case preservation) is not supported by this proxy`);
  checkHttp1(http1, `${where}.http_protocol_options`);
  const codec = h.codec_type ?? 'AUTO';
  if (codec !== 'AUTO' && codec !== 'HTTP1' && codec !== 'HTTP2') throw new ConfigError(`${where}: codec_type ${codec} is not supported by this proxy`);
  const http2 = parseHttp2Options(h.http2_protocol_options ?? {}, `${where}.http2_protocol_options`);
  let websocket = false;
  for (const [i, u] of (h.upgrade_configs ?? []).entries()) {
    checkUpgrade(u, `${where}.upgrade_configs[${i}]`);
    websocket = websocketEnabled(u, `${where}.upgrade_configs[${i}]`);
  }
  const common = h.common_http_protocol_options ?? {};
  checkCommon(common, `${where}.common_http_protocol_options`);
  const uaction = common.headers_with_underscores_action ?? 'ALLOW';
  if (uaction !== 'ALLOW') throw new ConfigError(`${where}: headers_with_underscores_action ${uaction} is not supported by this proxy`);
  for (const k of ['request_timeout', 'request_headers_timeout', 'stream_idle_timeout'] as const) {
    if (durationMs(h[k], 0) > 0) throw new ConfigError(`${where}.${k} is not supported by this proxy yet (Istio sets 0s)`);
  }
  const esa = h.path_with_escaped_slashes_action ?? 'KEEP_UNCHANGED';
  if (esa !== 'KEEP_UNCHANGED' && esa !== 'IMPLEMENTATION_SPECIFIC_DEFAULT')
    throw new ConfigError(`${where}: path_with_escaped_slashes_action ${esa} is not supported by this proxy`);
  if (h.strip_matching_host_port === true || h.strip_any_host_port === true)
    throw new ConfigError(`${where}: strip_*_host_port is not supported by this proxy`);
  if (h.append_x_forwarded_port === true) throw new ConfigError(`${where}: append_x_forwarded_port is not supported by this proxy`);
  if (h.via !== undefined && h.via !== '') throw new ConfigError(`${where}: via is not supported by this proxy`);
  if (h.add_user_agent === true) throw new ConfigError(`${where}: add_user_agent is not supported by this proxy`);
  const sht = h.server_header_transformation ?? 'OVERWRITE';
  return {
    statPrefix,
    accessLogs,
    rdsName,
    inlineRoutes,
    serverName: h.server_name || 'envoy',
    serverHeaderTransformation: sht === 'PASS_THROUGH' ? SERVER_PASS_THROUGH : sht === 'APPEND_IF_ABSENT' ? SERVER_APPEND_IF_ABSENT : SERVER_OVERWRITE,
    useRemoteAddress: h.use_remote_address === true,
    xffNumTrustedHops: h.xff_num_trusted_hops ?? 0,
    skipXffAppend: h.skip_xff_append === true,
    generateRequestId: h.generate_request_id ?? true,
    preserveExternalRequestId: h.preserve_external_request_id === true,
    acceptHttp10: http1.accept_http_10 === true,
    proxy100Continue: h.proxy_100_continue === true,
    normalizePath: h.normalize_path === true,
    mergeSlashes: h.merge_slashes === true,
    websocket,
    tracing,
    suppressEnvoyHeaders,
    filters,
    idleTimeoutMs: durationMs(common.idle_timeout, 3_600_000),
    maxRequestHeadersKb: h.max_request_headers_kb ?? 60,
    codec,
    http2,
    maxHeadersCount: common.max_headers_count ?? 100,
    xfcc: parseXfcc(h, where),
  };
}
