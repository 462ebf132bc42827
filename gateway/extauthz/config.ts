// The configuration of Envoy's external authorization filters (envoy.filters.http.ext_authz and
// envoy.filters.network.ext_authz), validated once per config: what istiod generates for a CUSTOM
// AuthorizationPolicy from the mesh config's extensionProviders (envoyExtAuthzHttp / envoyExtAuthzGrpc), and the
// rest of the messages Envoy implements that those providers cannot produce is NACKed, naming the field.
//
// Facts from Envoy (source/extensions/filters/http/ext_authz/ext_authz.cc, filters/common/ext_authz/*):
//   - status_on_error: a code outside 100..511 (unset included) is 403.
//   - The gRPC service's timeout defaults to 200 ms; the HTTP service's server_uri.timeout is required.
//   - The HTTP service always sends the body as bytes (pack_as_bytes is forced: it changes nothing on the wire).
//   - Header lists are StringMatchers on lowercase names. The HTTP service's request allowlist always adds
//     authorization, :method, :path and :authority; an empty allowed_client_headers sends every header but
//     host, a non-empty one adds :status, content-length, www-authenticate and location.
import { durationMs, type envoy } from '../../xds/envoy.ts';
import { envoyRoot } from '../../xds/protos.ts';
import { compileMetadataMatcher, type MetadataMatch } from '../router/metadata-matcher.ts';
import { compileStringMatcher } from '../router/matchers.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';

type HttpExtAuthz = envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
type NetworkExtAuthz = envoy.extensions.filters.network.ext_authz.v3.ExtAuthz;
type GrpcServiceConfig = envoy.config.core.v3.GrpcService;
type ListStringMatcher = envoy.type.matcher.v3.ListStringMatcher;

/** Matches a lowercase header name. */
export type HeaderKeyMatch = (name: string) => boolean;

export interface HttpServiceSpec {
  kind: 'http';
  cluster: string;
  timeoutMs: number;
  pathPrefix: string;
  /** authorization_request.headers_to_add: set on the check request (overwriting), lowercase names. */
  headersToAdd: [string, string][];
  /** authorization_response matchers. */
  upstream: HeaderKeyMatch;
  upstreamAppend: HeaderKeyMatch;
  client: HeaderKeyMatch;
  clientOnSuccess: HeaderKeyMatch;
  metadataFromHeaders: HeaderKeyMatch;
}

export interface GrpcServiceSpec {
  kind: 'grpc';
  cluster: string;
  /** :authority of the Check call: envoy_grpc.authority, else the cluster name. */
  authority: string;
  timeoutMs: number;
  /** initial_metadata, sent as request headers. */
  initialMetadata: [string, string][];
  /** skip_envoy_headers: no x-envoy-internal or x-forwarded-for on the call. */
  skipEnvoyHeaders: boolean;
}

interface BodySettings {
  maxBytes: number;
  allowPartial: boolean;
  packAsBytes: boolean;
}

export interface ExtAuthzSpec {
  service: HttpServiceSpec | GrpcServiceSpec;
  failureModeAllow: boolean;
  failureModeAllowHeaderAdd: boolean;
  statusOnError: number;
  withBody: BodySettings | undefined;
  clearRouteCache: boolean;
  /** filter_enabled_metadata: the filter runs only for requests whose dynamic metadata matches. */
  filterEnabled: MetadataMatch | undefined;
  includePeerCertificate: boolean;
  /** Counters live under `ext_authz.` + this (with its dot when set). */
  statPrefix: string;
  /** Request headers the CheckRequest carries (undefined: all of them, gRPC without allowed_headers). */
  allowedHeaders: HeaderKeyMatch | undefined;
  disallowedHeaders: HeaderKeyMatch | undefined;
  /** charge_cluster_response_stats (default true): a denial counts its status on the route's cluster. */
  chargeClusterResponseStats: boolean;
}

export interface NetworkExtAuthzSpec {
  service: GrpcServiceSpec;
  failureModeAllow: boolean;
  filterEnabled: MetadataMatch | undefined;
  includePeerCertificate: boolean;
  /** The counters' prefix, `ext_authz.<stat_prefix>.` as Envoy formats it. */
  statPrefix: string;
}

const TRANSPORT = 'V3, the only version Envoy has left (a gRPC service with another, unset included, is refused as Envoy does); nothing changes on the wire';

/** Envoy's Config::Utility::checkTransportVersion, applied to configs with a gRPC service. */
function checkTransportVersion(v: string | number | undefined, where: string): void {
  if (v === 'V3' || v === 2) return;
  throw new ConfigError(`${where}.transport_api_version: V2 (and AUTO) xDS transport protocol versions are not supported; set V3`);
}

const checkHttp = fieldTable(
  'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  {
    grpc_service: true,
    http_service: true,
    transport_api_version: TRANSPORT,
    failure_mode_allow: true,
    failure_mode_allow_header_add: true,
    with_request_body: true,
    clear_route_cache: true,
    status_on_error: true,
    filter_enabled_metadata: true,
    include_peer_certificate: true,
    stat_prefix: true,
    allowed_headers: true,
    disallowed_headers: true,
    charge_cluster_response_stats: true,
    validate_mutations: true,
  },
  'HTTP filter',
);
const checkNetwork = fieldTable(
  'envoy.extensions.filters.network.ext_authz.v3.ExtAuthz',
  {
    stat_prefix: true,
    grpc_service: true,
    failure_mode_allow: true,
    include_peer_certificate: true,
    transport_api_version: TRANSPORT,
    filter_enabled_metadata: true,
  },
  'network filter',
);
const checkHttpService = fieldTable('envoy.extensions.filters.http.ext_authz.v3.HttpService', {
  server_uri: true,
  path_prefix: true,
  authorization_request: true,
  authorization_response: true,
});
const checkHttpUri = fieldTable(
  'envoy.config.core.v3.HttpUri',
  {
    uri: 'required by Envoy and not used by the ext_authz filter (the check goes to the cluster, with the request host)',
    cluster: true,
    timeout: true,
  },
  'ext_authz http_service.server_uri',
);
const checkAuthzRequest = fieldTable('envoy.extensions.filters.http.ext_authz.v3.AuthorizationRequest', { allowed_headers: true, headers_to_add: true });
const checkAuthzResponse = fieldTable('envoy.extensions.filters.http.ext_authz.v3.AuthorizationResponse', {
  allowed_upstream_headers: true,
  allowed_upstream_headers_to_append: true,
  allowed_client_headers: true,
  allowed_client_headers_on_success: true,
  dynamic_metadata_from_headers: true,
});
const checkBody = fieldTable('envoy.extensions.filters.http.ext_authz.v3.BufferSettings', {
  max_request_bytes: true,
  allow_partial_message: true,
  pack_as_bytes: true,
});
const checkGrpcService = fieldTable('envoy.config.core.v3.GrpcService', { envoy_grpc: true, timeout: true, initial_metadata: true }, 'ext_authz');
const checkEnvoyGrpc = fieldTable('envoy.config.core.v3.GrpcService.EnvoyGrpc', {
  cluster_name: true,
  authority: true,
  skip_envoy_headers: true,
});
const checkHeaderValue = fieldTable('envoy.config.core.v3.HeaderValue', { key: true, value: true }, 'ext_authz');
const checkList = fieldTable('envoy.type.matcher.v3.ListStringMatcher', { patterns: true }, 'ext_authz');

/** The gRPC service's timeout when none is configured (Envoy's DefaultTimeout). */
const DEFAULT_GRPC_TIMEOUT_MS = 200;

/** Envoy's toErrorCode: a status outside 100..511 is 403. */
function statusCode(s: envoy.type.v3.HttpStatus | undefined): number {
  const code = s?.code;
  const n = typeof code === 'number' ? code : code === undefined ? 0 : (envoyRoot().lookupEnum('envoy.type.v3.StatusCode').values[code] ?? 0);
  return n >= 100 && n <= 511 ? n : 403;
}

function keyMatcher(list: ListStringMatcher | undefined, where: string, extra: readonly string[] = []): HeaderKeyMatch {
  if (list) checkList(list, where);
  const matchers = (list?.patterns ?? []).map((p, i) => compileStringMatcher(p, `${where}.patterns[${i}]`));
  const exact = new Set(extra);
  if (matchers.length === 0) return (k) => exact.has(k);
  return (k) => exact.has(k) || matchers.some((m) => m(k));
}

function headerValues(list: readonly envoy.config.core.v3.HeaderValue[] | undefined, where: string): [string, string][] {
  return (list ?? []).map((h, i) => {
    checkHeaderValue(h, `${where}[${i}]`);
    const key = (h.key ?? '').toLowerCase();
    if (key === '') throw new ConfigError(`${where}[${i}].key: must not be empty`);
    return [key, h.value ?? ''];
  });
}

function parseGrpcService(g: GrpcServiceConfig, where: string): GrpcServiceSpec {
  if (g.google_grpc !== undefined) throw new ConfigError(`${where}.google_grpc: not supported by this proxy (use envoy_grpc, as istiod does)`);
  checkGrpcService(g, where);
  const eg = g.envoy_grpc;
  if (!eg) throw new ConfigError(`${where}: envoy_grpc is required`);
  checkEnvoyGrpc(eg, `${where}.envoy_grpc`);
  const cluster = eg.cluster_name ?? '';
  if (cluster === '') throw new ConfigError(`${where}.envoy_grpc.cluster_name: must not be empty`);
  return {
    kind: 'grpc',
    cluster,
    authority: eg.authority || cluster,
    timeoutMs: durationMs(g.timeout, DEFAULT_GRPC_TIMEOUT_MS),
    initialMetadata: headerValues(g.initial_metadata, `${where}.initial_metadata`),
    skipEnvoyHeaders: eg.skip_envoy_headers === true,
  };
}

function parseHttpService(h: envoy.extensions.filters.http.ext_authz.v3.HttpService, where: string, topAllowed: ListStringMatcher | undefined) {
  checkHttpService(h, where);
  const uri = h.server_uri;
  if (!uri) throw new ConfigError(`${where}.server_uri: is required`);
  checkHttpUri(uri, `${where}.server_uri`);
  const cluster = uri.cluster ?? '';
  if (cluster === '') throw new ConfigError(`${where}.server_uri.cluster: must not be empty`);
  if (uri.timeout === undefined) throw new ConfigError(`${where}.server_uri.timeout: is required`);
  const req = h.authorization_request ?? {};
  checkAuthzRequest(req, `${where}.authorization_request`);
  if (req.allowed_headers !== undefined && topAllowed !== undefined)
    throw new ConfigError(`${where}: Invalid duplicate configuration for allowed_headers (set it once, at the top level)`);
  const res = h.authorization_response ?? {};
  checkAuthzResponse(res, `${where}.authorization_response`);
  const clientList = res.allowed_client_headers;
  const rw = `${where}.authorization_response`;
  // An empty client list forwards every header but host (Envoy's NotHeaderKeyMatcher).
  const client: HeaderKeyMatch =
    (clientList?.patterns ?? []).length === 0
      ? (k) => k !== 'host' && k !== ':authority'
      : keyMatcher(clientList, `${rw}.allowed_client_headers`, [':status', 'content-length', 'www-authenticate', 'location']);
  const spec: HttpServiceSpec = {
    kind: 'http',
    cluster,
    timeoutMs: durationMs(uri.timeout, 0),
    pathPrefix: h.path_prefix ?? '',
    headersToAdd: headerValues(req.headers_to_add, `${where}.authorization_request.headers_to_add`),
    upstream: keyMatcher(res.allowed_upstream_headers, `${rw}.allowed_upstream_headers`),
    upstreamAppend: keyMatcher(res.allowed_upstream_headers_to_append, `${rw}.allowed_upstream_headers_to_append`),
    client,
    clientOnSuccess: keyMatcher(res.allowed_client_headers_on_success, `${rw}.allowed_client_headers_on_success`),
    metadataFromHeaders: keyMatcher(res.dynamic_metadata_from_headers, `${rw}.dynamic_metadata_from_headers`),
  };
  if (spec.pathPrefix !== '' && !spec.pathPrefix.startsWith('/')) throw new ConfigError(`${where}.path_prefix: must start with '/'`);
  return { spec, allowed: req.allowed_headers };
}

function parseBody(b: envoy.extensions.filters.http.ext_authz.v3.BufferSettings | undefined, where: string, http: boolean): BodySettings | undefined {
  if (b === undefined) return undefined;
  checkBody(b, where);
  const maxBytes = b.max_request_bytes ?? 0;
  if (maxBytes <= 0) throw new ConfigError(`${where}.max_request_bytes: must be greater than 0`);
  return { maxBytes, allowPartial: b.allow_partial_message === true, packAsBytes: http || b.pack_as_bytes === true };
}

/** Validates an ExtAuthz HTTP filter config (pure: no sockets, no clock) and returns what the filter runs on. */
export function parseExtAuthz(cfg: HttpExtAuthz, where: string): ExtAuthzSpec {
  checkHttp(cfg, where);
  if (cfg.validate_mutations === true) throw new ConfigError(`${where}.validate_mutations: not supported by this proxy`);
  if ((cfg.grpc_service === undefined) === (cfg.http_service === undefined))
    throw new ConfigError(`${where}: exactly one of grpc_service and http_service is required`);
  let service: HttpServiceSpec | GrpcServiceSpec;
  let allowedHeaders: HeaderKeyMatch | undefined;
  if (cfg.http_service !== undefined) {
    const h = parseHttpService(cfg.http_service, `${where}.http_service`, cfg.allowed_headers);
    service = h.spec;
    // The HTTP service always gets authorization, :method, :path and :authority (host) besides the allowlist.
    const list = h.allowed ?? cfg.allowed_headers;
    allowedHeaders = keyMatcher(list, `${where}.allowed_headers`, ['authorization', ':method', ':path', ':authority']);
  } else {
    service = parseGrpcService(cfg.grpc_service as GrpcServiceConfig, `${where}.grpc_service`);
    checkTransportVersion(cfg.transport_api_version, where);
    // gRPC without an allowlist sends every header (Envoy's backwards compatible default).
    allowedHeaders = cfg.allowed_headers === undefined ? undefined : keyMatcher(cfg.allowed_headers, `${where}.allowed_headers`);
  }
  const sp = cfg.stat_prefix ?? '';
  return {
    service,
    failureModeAllow: cfg.failure_mode_allow === true,
    failureModeAllowHeaderAdd: cfg.failure_mode_allow_header_add === true,
    statusOnError: statusCode(cfg.status_on_error),
    withBody: parseBody(cfg.with_request_body, `${where}.with_request_body`, service.kind === 'http'),
    clearRouteCache: cfg.clear_route_cache === true,
    filterEnabled:
      cfg.filter_enabled_metadata === undefined ? undefined : compileMetadataMatcher(cfg.filter_enabled_metadata, `${where}.filter_enabled_metadata`),
    includePeerCertificate: cfg.include_peer_certificate === true,
    statPrefix: sp === '' ? '' : `${sp}.`,
    allowedHeaders,
    disallowedHeaders: cfg.disallowed_headers === undefined ? undefined : keyMatcher(cfg.disallowed_headers, `${where}.disallowed_headers`),
    chargeClusterResponseStats: cfg.charge_cluster_response_stats !== false,
  };
}

/** Validates a network ExtAuthz filter config (a CUSTOM policy on a TCP server: gRPC only). */
export function parseNetworkExtAuthz(cfg: NetworkExtAuthz, where: string): NetworkExtAuthzSpec {
  checkNetwork(cfg, where);
  if (cfg.grpc_service === undefined) throw new ConfigError(`${where}.grpc_service: is required`);
  checkTransportVersion(cfg.transport_api_version, where);
  const sp = cfg.stat_prefix ?? '';
  if (sp === '') throw new ConfigError(`${where}.stat_prefix: must not be empty`);
  return {
    service: parseGrpcService(cfg.grpc_service, `${where}.grpc_service`),
    failureModeAllow: cfg.failure_mode_allow === true,
    filterEnabled:
      cfg.filter_enabled_metadata === undefined ? undefined : compileMetadataMatcher(cfg.filter_enabled_metadata, `${where}.filter_enabled_metadata`),
    includePeerCertificate: cfg.include_peer_certificate === true,
    // Envoy formats `ext_authz.{}.` with the prefix as given: Istio's `tcp.` gives `ext_authz.tcp..ok`.
    statPrefix: `ext_authz.${sp}.`,
  };
}
