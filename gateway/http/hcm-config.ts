// envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager: validated and reduced
// to what the request path needs. Fields and HTTP filters that would change behaviour and are not
// implemented make the listener NACKed; knobs with no observable effect here are accepted.
import { ConfigError, anyType, arr, bool, checkFields, durationMs, num, obj, str, type Json } from '../xds/json.ts';
import { compileRouteConfig, type CompiledRouteConfig } from '../router/route-config.ts';
import { parseXfcc, type XfccConfig } from '../tls/xfcc.ts';

export const SERVER_OVERWRITE = 0;
export const SERVER_APPEND_IF_ABSENT = 1;
export const SERVER_PASS_THROUGH = 2;

export interface HcmSpec {
  statPrefix: string;
  /** RDS name, or undefined with an inline route_config. */
  rdsName: string | undefined;
  inlineRoutes: CompiledRouteConfig | undefined;
  inlineRoutesJson: Json | undefined;
  serverName: string;
  serverHeaderTransformation: number;
  useRemoteAddress: boolean;
  xffNumTrustedHops: number;
  skipXffAppend: boolean;
  generateRequestId: boolean;
  preserveExternalRequestId: boolean;
  alwaysSetRequestIdInResponse: boolean;
  acceptHttp10: boolean;
  normalizePath: boolean;
  mergeSlashes: boolean;
  websocket: boolean;
  tracing: boolean;
  suppressEnvoyHeaders: boolean;
  idleTimeoutMs: number;
  maxRequestHeadersKb: number;
  maxHeadersCount: number;
  internalAddressCidrs: string[];
  /** forward_client_cert_details / set_current_client_cert_details (x-forwarded-client-cert). */
  xfcc: XfccConfig;
}

// HTTP filters Istio puts on gateway HCMs that have no effect on traffic here without per-route config
// (stats, ALPN for TLS upstreams, fault/CORS that act only when a route configures them).
const NOOP_FILTERS = new Set([
  'istio.metadata_exchange',
  'envoy.filters.http.grpc_stats',
  'istio.alpn',
  'envoy.filters.http.fault',
  'envoy.filters.http.cors',
  'istio.stats',
  'envoy.filters.http.peer_metadata',
  'envoy.filters.http.wasm',
]);
const NOOP_FILTER_TYPES = new Set([
  'envoy.extensions.filters.http.grpc_stats.v3.FilterConfig',
  'envoy.extensions.filters.http.fault.v3.HTTPFault',
  'envoy.extensions.filters.http.cors.v3.Cors',
  'io.istio.http.peer_metadata.Config',
]);

function checkHttpFilters(v: unknown, where: string): { suppressEnvoyHeaders: boolean } {
  const filters = arr(v, where);
  if (filters.length === 0) throw new ConfigError(`${where}: the HTTP filter chain is empty (the router filter is required)`);
  let suppressEnvoyHeaders = false;
  filters.forEach((f, i) => {
    const w = `${where}[${i}]`;
    checkFields(f, w, ['name', 'typed_config', 'is_optional', 'disabled', 'config_discovery']);
    if (f.config_discovery !== undefined) throw new ConfigError(`${w}: extension config discovery (ECDS) is not supported by this proxy`);
    const name = str(f.name, `${w}.name`);
    const cfg = f.typed_config === undefined ? {} : obj(f.typed_config, `${w}.typed_config`);
    const type = anyType(cfg);
    const last = i === filters.length - 1;
    if (type === 'envoy.extensions.filters.http.router.v3.Router' || (!type && name === 'envoy.filters.http.router')) {
      if (!last) throw new ConfigError(`${w}: the router filter must be the last HTTP filter`);
      checkFields(cfg, `${w}.typed_config`, ['@type', 'suppress_envoy_headers', 'start_child_span', 'dynamic_stats']);
      suppressEnvoyHeaders = bool(cfg.suppress_envoy_headers, w);
      return;
    }
    if (last) throw new ConfigError(`${w}: the last HTTP filter must be the router (got '${name}')`);
    if (bool(f.disabled, w)) return;
    if (NOOP_FILTERS.has(name) || NOOP_FILTER_TYPES.has(type)) {
      // Only filter-level config that does nothing: a fault filter with a default abort/delay would act.
      if (type === 'envoy.extensions.filters.http.fault.v3.HTTPFault' && (cfg.abort !== undefined || cfg.delay !== undefined)) {
        throw new ConfigError(`${w}: listener-level fault injection is not supported by this proxy`);
      }
      return;
    }
    if (bool(f.is_optional, w)) return;
    throw new ConfigError(`${w}: HTTP filter '${name}'${type ? ` (${type})` : ''} is not supported by this proxy`);
  });
  return { suppressEnvoyHeaders };
}

/** Validates an HCM (as JSON, with its Any unpacked) for listener `listener`. */
export function parseHcm(h: Json, where: string): HcmSpec {
  checkFields(h, where, [
    '@type',
    'stat_prefix',
    'rds',
    'route_config',
    'http_filters',
    'tracing',
    'access_log',
    'use_remote_address',
    'xff_num_trusted_hops',
    'skip_xff_append',
    'forward_client_cert_details',
    'set_current_client_cert_details',
    'server_name',
    'server_header_transformation',
    'stream_idle_timeout',
    'normalize_path',
    'merge_slashes',
    'path_with_escaped_slashes_action',
    'request_id_extension',
    'http_protocol_options',
    'http2_protocol_options',
    'codec_type',
    'upgrade_configs',
    'common_http_protocol_options',
    'generate_request_id',
    'preserve_external_request_id',
    'always_set_request_id_in_response',
    'proxy_100_continue',
    'internal_address_config',
    'delayed_close_timeout',
    'drain_timeout',
    'request_timeout',
    'request_headers_timeout',
    'max_request_headers_kb',
    'add_user_agent',
    'via',
    'strip_matching_host_port',
    'strip_any_host_port',
    'append_x_forwarded_port',
    'stream_error_on_invalid_http_message',
    'server_header_transformation',
    'represent_ipv4_remote_address_as_ipv4_mapped_ipv6',
    'access_log_options',
  ]);
  const statPrefix = str(h.stat_prefix, `${where}.stat_prefix`);
  let rdsName: string | undefined;
  let inlineRoutes: CompiledRouteConfig | undefined;
  let inlineRoutesJson: Json | undefined;
  if (h.rds !== undefined) {
    const rds = obj(h.rds, `${where}.rds`);
    checkFields(rds, `${where}.rds`, ['config_source', 'route_config_name']);
    const cs = obj(rds.config_source, `${where}.rds.config_source`);
    if (cs.ads === undefined) throw new ConfigError(`${where}.rds.config_source: only ADS is supported`);
    rdsName = str(rds.route_config_name, `${where}.rds.route_config_name`);
  } else if (h.route_config !== undefined) {
    inlineRoutesJson = obj(h.route_config, `${where}.route_config`);
    inlineRoutes = compileRouteConfig(inlineRoutesJson);
  } else throw new ConfigError(`${where}: needs rds or route_config (scoped routes are not supported)`);
  const { suppressEnvoyHeaders } = checkHttpFilters(h.http_filters, `${where}.http_filters`);
  if (h.access_log !== undefined && arr(h.access_log, where).length > 0) {
    // Istio's own access log format is produced by the proxy's --access-log option instead.
    throw new ConfigError(`${where}.access_log: HCM access loggers are not supported by this proxy (use meshgate proxy --access-log)`);
  }
  const http1 = obj(h.http_protocol_options, `${where}.http_protocol_options`);
  checkFields(http1, `${where}.http_protocol_options`, ['accept_http_10', 'default_host_for_http_10', 'header_key_format', 'allow_chunked_length']);
  if (http1.header_key_format !== undefined)
    throw new ConfigError(`${where}.http_protocol_options.header_key_format (header case preservation) is not supported by this proxy`);
  const codec = str(h.codec_type, `${where}.codec_type`, 'AUTO');
  if (codec !== 'AUTO' && codec !== 'HTTP1') throw new ConfigError(`${where}: codec_type ${codec} is not supported by this proxy`);
  let websocket = false;
  for (const [i, u] of arr(h.upgrade_configs, `${where}.upgrade_configs`).entries()) {
    checkFields(u, `${where}.upgrade_configs[${i}]`, ['upgrade_type', 'enabled']);
    if (str(u.upgrade_type, where).toLowerCase() === 'websocket') websocket = u.enabled === undefined ? true : bool(u.enabled, where);
    else throw new ConfigError(`${where}.upgrade_configs[${i}]: upgrade type '${str(u.upgrade_type, where)}' is not supported`);
  }
  const common = obj(h.common_http_protocol_options, `${where}.common_http_protocol_options`);
  checkFields(common, `${where}.common_http_protocol_options`, [
    'idle_timeout',
    'max_headers_count',
    'headers_with_underscores_action',
    'max_connection_duration',
    'max_stream_duration',
    'max_requests_per_connection',
  ]);
  const uaction = str(common.headers_with_underscores_action, where, 'ALLOW');
  if (uaction !== 'ALLOW') throw new ConfigError(`${where}: headers_with_underscores_action ${uaction} is not supported by this proxy`);
  for (const k of ['request_timeout', 'request_headers_timeout', 'stream_idle_timeout'] as const) {
    if (durationMs(h[k], `${where}.${k}`, 0) > 0) throw new ConfigError(`${where}.${k} is not supported by this proxy yet (Istio sets 0s)`);
  }
  const esa = str(h.path_with_escaped_slashes_action, where, 'KEEP_UNCHANGED');
  if (esa !== 'KEEP_UNCHANGED' && esa !== 'IMPLEMENTATION_SPECIFIC_DEFAULT')
    throw new ConfigError(`${where}: path_with_escaped_slashes_action ${esa} is not supported by this proxy`);
  if (bool(h.strip_matching_host_port, where) || bool(h.strip_any_host_port, where))
    throw new ConfigError(`${where}: strip_*_host_port is not supported by this proxy`);
  if (bool(h.append_x_forwarded_port, where)) throw new ConfigError(`${where}: append_x_forwarded_port is not supported by this proxy`);
  if (h.via !== undefined && str(h.via, where) !== '') throw new ConfigError(`${where}: via is not supported by this proxy`);
  if (bool(h.add_user_agent, where)) throw new ConfigError(`${where}: add_user_agent is not supported by this proxy`);
  const sht = str(h.server_header_transformation, where, 'OVERWRITE');
  const internal = obj(h.internal_address_config, `${where}.internal_address_config`);
  checkFields(internal, `${where}.internal_address_config`, ['unix_sockets', 'cidr_ranges']);
  const cidrs = arr(internal.cidr_ranges, where).map((c) => `${str(c.address_prefix, where)}/${num(c.prefix_len, where)}`);
  return {
    statPrefix,
    rdsName,
    inlineRoutes,
    inlineRoutesJson,
    serverName: str(h.server_name, where) || 'envoy',
    serverHeaderTransformation: sht === 'PASS_THROUGH' ? SERVER_PASS_THROUGH : sht === 'APPEND_IF_ABSENT' ? SERVER_APPEND_IF_ABSENT : SERVER_OVERWRITE,
    useRemoteAddress: bool(h.use_remote_address, where),
    xffNumTrustedHops: num(h.xff_num_trusted_hops, where),
    skipXffAppend: bool(h.skip_xff_append, where),
    generateRequestId: h.generate_request_id === undefined ? true : bool(h.generate_request_id, where),
    preserveExternalRequestId: bool(h.preserve_external_request_id, where),
    alwaysSetRequestIdInResponse: bool(h.always_set_request_id_in_response, where),
    acceptHttp10: bool(http1.accept_http_10, where),
    normalizePath: bool(h.normalize_path, where),
    mergeSlashes: bool(h.merge_slashes, where),
    websocket,
    tracing: h.tracing !== undefined,
    suppressEnvoyHeaders,
    idleTimeoutMs: durationMs(common.idle_timeout, `${where}.common_http_protocol_options.idle_timeout`, 3_600_000),
    maxRequestHeadersKb: num(h.max_request_headers_kb, where, 60),
    maxHeadersCount: num(common.max_headers_count, where, 100),
    internalAddressCidrs: cidrs,
    xfcc: parseXfcc(h, where),
  };
}
