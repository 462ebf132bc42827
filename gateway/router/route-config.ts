// A RouteConfiguration compiled into lookup tables: virtual hosts by domain (exact, suffix wildcards longest
// first, prefix wildcards longest first, '*'), routes in order with precompiled matchers, and actions with
// everything resolvable per config already resolved. Independent of node:http: the input is a MatchRequest
// (method, authority, path, scheme, flat lowercase headers).
import { durationMs, type envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { regexMatcher } from '../xds/regex-matcher.ts';
import { compileHeaderMutation, isEmptyMutation, type HeaderMutation } from './header-ops.ts';
import { compileHeaderMatcher, compileQueryParameterMatcher, type HeaderMatch, type MatchRequest, type QueryMatch } from './matchers.ts';
import { compileMetadataMatcher, type MetadataMatch } from './metadata-matcher.ts';
import { compileRetryPolicy, type RetryPolicy } from './retry-policy.ts';
import { checkNoOpPerFilterConfig, compilePerFilterConfig } from './per-filter-config.ts';
import { compileMirrorPolicies, type MirrorPolicy } from './mirror.ts';
import { compileHashPolicy, type RequestHash } from './hash-policy.ts';
import { PATH_ANY, PATH_EXACT, PATH_PREFIX, PATH_REGEX, PATH_SEPARATED, buildRouteIndex, firstMatch, type RouteIndex } from './route-index.ts';
import type { FaultConfig } from './fault-config.ts';
import type { Re2 } from '../../xds/re2.ts';
import type { CorsPolicy } from './cors-policy.ts';
import type { Duration } from '../../xds/envoy.ts';

/** A route's max_stream_duration settings; undefined fields were not configured. */
export interface StreamDurationConfig {
  maxStreamDurationMs: number | undefined;
  grpcTimeoutHeaderMaxMs: number | undefined;
  grpcTimeoutHeaderOffsetMs: number | undefined;
}

export const ACTION_ROUTE = 0;
export const ACTION_REDIRECT = 1;
export const ACTION_DIRECT = 2;

interface WeightedCluster {
  name: string;
  weight: number;
  requestHeaders: HeaderMutation;
  responseHeaders: HeaderMutation;
}

interface RedirectAction {
  scheme: string | undefined;
  host: string | undefined;
  port: number | undefined;
  path: string | undefined;
  prefixRewrite: string | undefined;
  regexRewrite: RegexRewrite | undefined;
  status: number;
  stripQuery: boolean;
}

export interface CompiledRoute {
  name: string;
  vhost: CompiledVirtualHost;
  /** Path matching kind, for prefix_rewrite: the matched prefix length. */
  prefix: string | undefined;
  caseSensitive: boolean;
  /** PATH_ANY, PATH_PREFIX, PATH_EXACT, PATH_SEPARATED or PATH_REGEX (route-index.ts); see pathMatches. */
  pathKind: number;
  /** The prefix or path, lowercased when not case-sensitive ('' for PATH_ANY and PATH_REGEX). */
  pathKey: string;
  pathRegex: Re2 | undefined;
  headers: readonly HeaderMatch[];
  query: readonly QueryMatch[];
  grpcOnly: boolean;
  /** dynamic_metadata: every matcher must hold (the jwt_authn payload, for routes on JWT claims). */
  metadata: readonly MetadataMatch[];
  action: number;
  // ACTION_ROUTE
  cluster: string | undefined;
  clusterHeader: string | undefined;
  weighted: WeightedCluster[] | undefined;
  totalWeight: number;
  clusterNotFoundStatus: number;
  timeoutMs: number;
  /** max_stream_duration (the stream's duration limit, grpc-timeout): undefined when the route sets none. */
  streamDuration: StreamDurationConfig | undefined;
  /**
   * max_grpc_timeout (what istiod sets: 0s, or the VirtualService timeout), only without max_stream_duration:
   * a gRPC request's timeout is its grpc-timeout header capped at this (0: no cap). Undefined: not set.
   */
  maxGrpcTimeoutMs: number | undefined;
  grpcTimeoutOffsetMs: number;
  retry: RetryPolicy | undefined;
  prefixRewrite: string | undefined;
  regexRewrite: RegexRewrite | undefined;
  hostRewrite: string | undefined;
  decorator: string | undefined;
  /** Route-level websocket upgrade_configs; undefined: the HCM's setting applies. */
  websocket: boolean | undefined;
  /** Fault filter per-route config (VirtualService fault). */
  fault: FaultConfig | undefined;
  /** CORS policies, route first then virtual host (the CORS filter reads them in that order). */
  cors: CorsPolicy[] | undefined;
  mirrors: MirrorPolicy[] | undefined;
  /** Consistent-hash key of the request (route hash_policy), for RING_HASH / MAGLEV clusters. */
  hash: RequestHash | undefined;
  // ACTION_DIRECT
  directStatus: number;
  directBody: string;
  // ACTION_REDIRECT
  redirect: RedirectAction | undefined;
  /** Header mutations in Envoy's order: route, virtual host, route configuration (shared when equal). */
  requestHeaders: readonly HeaderMutation[];
  responseHeaders: readonly HeaderMutation[];
}

export interface CompiledVirtualHost {
  name: string;
  routes: CompiledRoute[];
  /** Routes by path matcher (route-index.ts); undefined for short route lists, scanned in order. */
  index: RouteIndex | undefined;
  includeAttemptCount: boolean;
  includeAttemptCountInResponse: boolean;
  requireTls: number;
  retry: RetryPolicy | undefined;
  cors: CorsPolicy | undefined;
  fault: FaultConfig | undefined;
}

export interface CompiledRouteConfig {
  name: string;
  ignorePortInHostMatching: boolean;
  exact: Map<string, CompiledVirtualHost>;
  /** Suffix wildcards ('*.example.com' -> '.example.com'), by suffix. */
  suffixWildcards: Map<string, CompiledVirtualHost>;
  /** Distinct suffix lengths, longest first (Envoy's wildcard_virtual_host_suffixes_ is keyed the same way). */
  suffixLengths: number[];
  /** Prefix wildcards ('foo.*' -> 'foo.'), by prefix. */
  prefixWildcards: Map<string, CompiledVirtualHost>;
  prefixLengths: number[];
  star: CompiledVirtualHost | undefined;
  internalOnlyHeaders: string[];
  virtualHosts: CompiledVirtualHost[];
}

export const REQUIRE_TLS_NONE = 0;
const REQUIRE_TLS_EXTERNAL_ONLY = 1;
const REQUIRE_TLS_ALL = 2;

const REDIRECT_CODES: Record<string, number> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

const CLUSTER_NOT_FOUND_CODES: Record<string, number> = { SERVICE_UNAVAILABLE: 503, NOT_FOUND: 404, INTERNAL_SERVER_ERROR: 500 };

type Route = envoy.config.route.v3.Route;
type RouteAction = envoy.config.route.v3.RouteAction;
type VirtualHost = envoy.config.route.v3.VirtualHost;
type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;

const NO_EFFECT_PER_FILTER = 'only per-filter configs without effect (empty, or a disabled FilterConfig) are accepted; any other is NACKed';
const METADATA = 'filter metadata for other filters (Istio names the source VirtualService there); nothing here reads it';

const checkRedirect = fieldTable('envoy.config.route.v3.RedirectAction', {
  https_redirect: true,
  scheme_redirect: true,
  host_redirect: true,
  port_redirect: true,
  path_redirect: true,
  prefix_rewrite: true,
  regex_rewrite: true,
  response_code: true,
  strip_query: true,
});

function compileRedirect(r: envoy.config.route.v3.RedirectAction, where: string): RedirectAction {
  checkRedirect(r, where);
  const code = r.response_code === undefined ? 301 : REDIRECT_CODES[r.response_code];
  if (code === undefined) throw new ConfigError(`${where}.response_code: unknown redirect code`);
  let scheme: string | undefined;
  if (r.https_redirect === true) scheme = 'https';
  else if (r.scheme_redirect !== undefined) scheme = r.scheme_redirect.toLowerCase();
  return {
    scheme,
    host: r.host_redirect,
    port: r.port_redirect,
    path: r.path_redirect,
    prefixRewrite: r.prefix_rewrite,
    regexRewrite: r.regex_rewrite === undefined ? undefined : compileRegexRewrite(r.regex_rewrite, `${where}.regex_rewrite`),
    status: code,
    stripQuery: r.strip_query === true,
  };
}

/** route.regex_rewrite: RE2::GlobalReplace of the path (without the query), `\N` back-references. */
export interface RegexRewrite {
  apply(path: string): string;
}

const checkRegexRewrite = fieldTable('envoy.type.matcher.v3.RegexMatchAndSubstitute', { pattern: true, substitution: true });

function compileRegexRewrite(r: envoy.type.matcher.v3.RegexMatchAndSubstitute, where: string): RegexRewrite {
  checkRegexRewrite(r, where);
  const re = regexMatcher(r.pattern ?? {}, `${where}.pattern`);
  const sub = r.substitution ?? '';
  // RE2::Rewrite: `\0`..`\9` name groups and `\\` is a backslash; any other backslash, or a group the pattern
  // does not have, makes the rewrite invalid (RE2::CheckRewriteString).
  const parts: (string | number)[] = [];
  let lit = '';
  for (let i = 0; i < sub.length; i++) {
    const c = sub[i] as string;
    if (c !== '\\') {
      lit += c;
      continue;
    }
    const n = sub.charCodeAt(++i) - 48;
    if (sub[i] === '\\') lit += '\\';
    else if (n >= 0 && n <= 9) {
      if (n > re.groups) throw new ConfigError(`${where}.substitution: invalid rewrite pattern '${sub}': \\${n} names a group the pattern does not have`);
      if (lit) parts.push(lit);
      lit = '';
      parts.push(n);
    } else throw new ConfigError(`${where}.substitution: invalid rewrite pattern '${sub}': a backslash must be followed by a digit or a backslash`);
  }
  if (lit) parts.push(lit);
  return {
    apply: (path) =>
      re.replaceAll(path, (groups) => {
        let out = '';
        for (const p of parts) out += typeof p === 'string' ? p : (groups[p] ?? '');
        return out;
      }),
  };
}

// Shared by every route without header or query-parameter conditions (most of them): a route costs no
// arrays of its own for them.
const NO_HEADER_MATCHES: readonly HeaderMatch[] = Object.freeze([]);
const NO_QUERY_MATCHES: readonly QueryMatch[] = Object.freeze([]);
const NO_METADATA_MATCHES: readonly MetadataMatch[] = Object.freeze([]);
const NO_MUTATIONS: readonly HeaderMutation[] = Object.freeze([]);

type RouteMatchFields = Pick<CompiledRoute, 'prefix' | 'caseSensitive' | 'pathKind' | 'pathKey' | 'pathRegex' | 'headers' | 'query' | 'grpcOnly' | 'metadata'>;

// runtime_fraction is rejected with its own message below.
const checkRouteMatch = fieldTable('envoy.config.route.v3.RouteMatch', {
  prefix: true,
  path: true,
  safe_regex: true,
  path_separated_prefix: true,
  case_sensitive: true,
  headers: true,
  query_parameters: true,
  grpc: true,
  dynamic_metadata: true,
});

function compileRouteMatch(m: envoy.config.route.v3.RouteMatch, where: string): RouteMatchFields {
  if (m.runtime_fraction !== undefined) throw new ConfigError(`${where}.runtime_fraction is not supported by this proxy`);
  checkRouteMatch(m, where);
  const caseSensitive = m.case_sensitive ?? true;
  let prefix: string | undefined;
  let pathKind: number;
  let pathKey = '';
  let pathRegex: Re2 | undefined;
  if (m.prefix !== undefined) {
    const p = m.prefix;
    prefix = p;
    if (p === '' || p === '/') pathKind = PATH_ANY;
    else {
      pathKind = PATH_PREFIX;
      pathKey = caseSensitive ? p : p.toLowerCase();
    }
  } else if (m.path !== undefined) {
    const p = m.path;
    pathKind = PATH_EXACT;
    pathKey = caseSensitive ? p : p.toLowerCase();
  } else if (m.safe_regex !== undefined) {
    pathKind = PATH_REGEX;
    pathRegex = regexMatcher(m.safe_regex, `${where}.safe_regex`);
  } else if (m.path_separated_prefix !== undefined) {
    const p = m.path_separated_prefix;
    if (p.endsWith('/')) throw new ConfigError(`${where}.path_separated_prefix must not end with '/'`);
    prefix = p;
    pathKind = PATH_SEPARATED;
    pathKey = caseSensitive ? p : p.toLowerCase();
  } else throw new ConfigError(`${where}: a route match needs prefix, path, safe_regex or path_separated_prefix`);
  const headers = m.headers === undefined ? NO_HEADER_MATCHES : m.headers.map((h, i) => compileHeaderMatcher(h, `${where}.headers[${i}]`));
  const query =
    m.query_parameters === undefined ? NO_QUERY_MATCHES : m.query_parameters.map((q, i) => compileQueryParameterMatcher(q, `${where}.query_parameters[${i}]`));
  const grpcOnly = m.grpc !== undefined;
  // istiod's routes on JWT claims (VirtualService `@request.auth.claims` header matches): the jwt_authn payload.
  const metadata = (m.dynamic_metadata ?? []).map((d, i) => compileMetadataMatcher(d, `${where}.dynamic_metadata[${i}]`));
  return {
    prefix,
    caseSensitive,
    pathKind,
    pathKey,
    pathRegex,
    headers: headers.length ? headers : NO_HEADER_MATCHES,
    query: query.length ? query : NO_QUERY_MATCHES,
    grpcOnly,
    metadata: metadata.length ? metadata : NO_METADATA_MATCHES,
  };
}

/** Whether the route's path matcher matches `path` (:path without query). */
function pathMatches(r: RouteMatchFields, path: string): boolean {
  const k = r.pathKey;
  switch (r.pathKind) {
    case PATH_ANY:
      return true;
    case PATH_PREFIX:
      return r.caseSensitive ? path.startsWith(k) : path.length >= k.length && path.slice(0, k.length).toLowerCase() === k;
    case PATH_EXACT:
      return r.caseSensitive ? path === k : path.length === k.length && path.toLowerCase() === k;
    case PATH_SEPARATED: {
      const t = r.caseSensitive ? path : path.toLowerCase();
      return t.startsWith(k) && (t.length === k.length || t.charCodeAt(k.length) === 0x2f);
    }
    default:
      return r.pathRegex !== undefined && r.pathRegex.fullMatch(path);
  }
}

/** Per RouteConfiguration: identical route pieces compiled once and shared by the routes that use them. */
interface CompileContext {
  req: HeaderMutation;
  resp: HeaderMutation;
  retries: Map<string, RetryPolicy>;
}

/** Per virtual host: what its routes inherit (shared by every route that adds nothing of its own). */
interface VhostShared {
  ctx: CompileContext;
  /** [virtual host, route configuration] mutations, the non-empty ones. */
  reqList: readonly HeaderMutation[];
  respList: readonly HeaderMutation[];
  corsList: CorsPolicy[] | undefined;
}

function compileRetry(v: envoy.config.route.v3.RetryPolicy, ctx: CompileContext, where: string): RetryPolicy {
  const key = JSON.stringify(v);
  let p = ctx.retries.get(key);
  if (!p) {
    p = compileRetryPolicy(v, where);
    ctx.retries.set(key, p);
  }
  return p;
}

function mutations(own: HeaderMutation, inherited: readonly HeaderMutation[]): readonly HeaderMutation[] {
  return isEmptyMutation(own) ? inherited : [own, ...inherited];
}

// per_request_buffer_limit_bytes is not listed (NACKed): retries and mirrors buffer up to the listener's limit.
const checkRoute = fieldTable('envoy.config.route.v3.Route', {
  name: true,
  match: true,
  route: true,
  redirect: true,
  direct_response: true,
  decorator: true,
  typed_per_filter_config: true,
  request_headers_to_add: true,
  request_headers_to_remove: true,
  response_headers_to_add: true,
  response_headers_to_remove: true,
  metadata: METADATA,
  tracing: "per-route sampling overrides and tags are not applied (Istio sets none): the HCM's tracing decides; the route decorator names the span",
  stat_prefix: 'there are no per-route stats here',
});
const checkDecorator = fieldTable('envoy.config.route.v3.Decorator', { operation: true, propagate: true });
const checkDirectResponse = fieldTable('envoy.config.route.v3.DirectResponseAction', { status: true, body: true });
const checkDirectBody = fieldTable('envoy.config.core.v3.DataSource', { inline_string: true, inline_bytes: true }, 'direct_response.body');

function compileRoute(r: Route, vhost: CompiledVirtualHost, shared: VhostShared, where: string): CompiledRoute {
  checkRoute(r, where);
  const name = r.name ?? '';
  const w = name ? `${where} '${name}'` : where;
  const perFilter = compilePerFilterConfig(r.typed_per_filter_config, `${w}.typed_per_filter_config`);
  const match = compileRouteMatch(r.match ?? {}, `${w}.match`);
  const reqH = compileHeaderMutation(r.request_headers_to_add, r.request_headers_to_remove, `${w}.request_headers_to_add`);
  const respH = compileHeaderMutation(r.response_headers_to_add, r.response_headers_to_remove, `${w}.response_headers_to_add`);
  const dec = r.decorator;
  if (dec) checkDecorator(dec, `${w}.decorator`);
  // Every field written here, in one order, so that all routes share one object shape with in-object fields.
  const route: CompiledRoute = {
    name,
    vhost,
    prefix: match.prefix,
    caseSensitive: match.caseSensitive,
    pathKind: match.pathKind,
    pathKey: match.pathKey,
    pathRegex: match.pathRegex,
    headers: match.headers,
    query: match.query,
    grpcOnly: match.grpcOnly,
    metadata: match.metadata,
    action: ACTION_ROUTE,
    cluster: undefined,
    clusterHeader: undefined,
    weighted: undefined,
    totalWeight: 0,
    clusterNotFoundStatus: 503,
    timeoutMs: 15000,
    streamDuration: undefined,
    maxGrpcTimeoutMs: undefined,
    grpcTimeoutOffsetMs: 0,
    retry: vhost.retry,
    prefixRewrite: undefined,
    regexRewrite: undefined,
    hostRewrite: undefined,
    decorator: dec && dec.propagate !== false ? dec.operation || undefined : undefined,
    websocket: undefined,
    fault: perFilter.fault ?? vhost.fault,
    cors: perFilter.cors && vhost.cors ? [perFilter.cors, vhost.cors] : perFilter.cors ? [perFilter.cors] : shared.corsList,
    mirrors: undefined,
    hash: undefined,
    directStatus: 0,
    directBody: '',
    redirect: undefined,
    requestHeaders: mutations(reqH, shared.reqList),
    responseHeaders: mutations(respH, shared.respList),
  };
  if ([r.route, r.redirect, r.direct_response].filter((k) => k !== undefined).length !== 1)
    throw new ConfigError(`${w}: a route needs exactly one of route, redirect, direct_response`);
  if (r.redirect !== undefined) {
    route.action = ACTION_REDIRECT;
    route.redirect = compileRedirect(r.redirect, `${w}.redirect`);
  } else if (r.direct_response !== undefined) {
    route.action = ACTION_DIRECT;
    const d = r.direct_response;
    checkDirectResponse(d, `${w}.direct_response`);
    route.directStatus = d.status ?? 0;
    if (route.directStatus < 200 || route.directStatus > 599) throw new ConfigError(`${w}.direct_response.status must be in [200, 599]`);
    if (d.body !== undefined) {
      const b = d.body;
      checkDirectBody(b, `${w}.direct_response.body`);
      route.directBody = b.inline_string !== undefined ? b.inline_string : Buffer.from(b.inline_bytes ?? '', 'base64').toString('latin1');
    }
  } else compileRouteAction(r.route ?? {}, route, shared.ctx, `${w}.route`);
  return route;
}

const checkRouteAction = fieldTable('envoy.config.route.v3.RouteAction', {
  cluster: true,
  cluster_header: true,
  weighted_clusters: true,
  cluster_not_found_response_code: true,
  prefix_rewrite: true,
  regex_rewrite: true,
  host_rewrite_literal: true,
  timeout: true,
  retry_policy: true,
  hash_policy: true,
  upgrade_configs: true,
  request_mirror_policies: true,
  auto_host_rewrite: 'only false is accepted: rewriting Host to the upstream host name is not implemented, true is NACKed',
  append_x_forwarded_host: 'only false is accepted: true is NACKed',
  idle_timeout: 'only 0s (none) is accepted: a route idle timeout is NACKed',
  priority: 'only DEFAULT is accepted (there is one routing priority here): HIGH is NACKed',
  max_grpc_timeout: true,
  grpc_timeout_offset: true,
  max_stream_duration: true,
});
const checkMaxStreamDuration = fieldTable('envoy.config.route.v3.RouteAction.MaxStreamDuration', {
  max_stream_duration: true,
  grpc_timeout_header_max: true,
  grpc_timeout_header_offset: true,
});
const checkWeightedClusters = fieldTable('envoy.config.route.v3.WeightedCluster', { clusters: true, total_weight: true });
// metadata_match is rejected with its own message below.
const checkClusterWeight = fieldTable('envoy.config.route.v3.WeightedCluster.ClusterWeight', {
  name: true,
  weight: true,
  request_headers_to_add: true,
  request_headers_to_remove: true,
  response_headers_to_add: true,
  response_headers_to_remove: true,
  typed_per_filter_config: NO_EFFECT_PER_FILTER,
});
const checkRouteUpgrade = fieldTable('envoy.config.route.v3.RouteAction.UpgradeConfig', { upgrade_type: true, enabled: true });

function compileRouteAction(a: RouteAction, route: CompiledRoute, ctx: CompileContext, where: string): void {
  checkRouteAction(a, where);
  if ([a.cluster, a.cluster_header, a.weighted_clusters].filter((k) => k !== undefined).length !== 1)
    throw new ConfigError(`${where}: needs exactly one of cluster, cluster_header, weighted_clusters`);
  if (a.cluster !== undefined) route.cluster = a.cluster;
  else if (a.cluster_header !== undefined) route.clusterHeader = a.cluster_header.toLowerCase();
  else {
    const wc = a.weighted_clusters ?? {};
    checkWeightedClusters(wc, `${where}.weighted_clusters`);
    route.weighted = (wc.clusters ?? []).map((c, i) => {
      const w = `${where}.weighted_clusters.clusters[${i}]`;
      if (c.metadata_match !== undefined) throw new ConfigError(`${w}.metadata_match is not supported by this proxy`);
      checkClusterWeight(c, w);
      checkNoOpPerFilterConfig(c.typed_per_filter_config, `${w}.typed_per_filter_config`);
      return {
        name: c.name ?? '',
        weight: c.weight ?? 0,
        requestHeaders: compileHeaderMutation(c.request_headers_to_add, c.request_headers_to_remove, `${w}.request_headers_to_add`),
        responseHeaders: compileHeaderMutation(c.response_headers_to_add, c.response_headers_to_remove, `${w}.response_headers_to_add`),
      };
    });
    route.totalWeight = route.weighted.reduce((s, c) => s + c.weight, 0);
    if (wc.total_weight !== undefined && wc.total_weight !== route.totalWeight) {
      throw new ConfigError(`${where}.weighted_clusters: total_weight ${wc.total_weight} does not match the sum of weights ${route.totalWeight}`);
    }
    if (route.totalWeight <= 0) throw new ConfigError(`${where}.weighted_clusters: the sum of weights must be greater than 0`);
  }
  if (a.cluster_not_found_response_code !== undefined) {
    const c = CLUSTER_NOT_FOUND_CODES[a.cluster_not_found_response_code];
    if (c === undefined) throw new ConfigError(`${where}.cluster_not_found_response_code: unknown value`);
    route.clusterNotFoundStatus = c;
  }
  if (a.prefix_rewrite !== undefined) route.prefixRewrite = a.prefix_rewrite;
  if (a.regex_rewrite !== undefined) route.regexRewrite = compileRegexRewrite(a.regex_rewrite, `${where}.regex_rewrite`);
  if (route.prefixRewrite !== undefined && route.regexRewrite) throw new ConfigError(`${where}: prefix_rewrite and regex_rewrite are mutually exclusive`);
  if (a.host_rewrite_literal !== undefined) route.hostRewrite = a.host_rewrite_literal;
  if (a.auto_host_rewrite === true) throw new ConfigError(`${where}.auto_host_rewrite is not supported by this proxy`);
  if (a.append_x_forwarded_host === true) throw new ConfigError(`${where}.append_x_forwarded_host is not supported by this proxy`);
  if (a.priority !== undefined && a.priority !== 'DEFAULT') throw new ConfigError(`${where}.priority: only DEFAULT is supported`);
  route.timeoutMs = durationMs(a.timeout, 15000);
  if (a.retry_policy !== undefined) route.retry = compileRetry(a.retry_policy, ctx, `${where}.retry_policy`);
  if (a.max_stream_duration !== undefined) {
    const m = a.max_stream_duration;
    checkMaxStreamDuration(m, `${where}.max_stream_duration`);
    const opt = (d: Duration | undefined): number | undefined => (d === undefined ? undefined : durationMs(d, 0));
    route.streamDuration = {
      maxStreamDurationMs: opt(m.max_stream_duration),
      grpcTimeoutHeaderMaxMs: opt(m.grpc_timeout_header_max),
      grpcTimeoutHeaderOffsetMs: opt(m.grpc_timeout_header_offset),
    };
  } else if (a.max_grpc_timeout !== undefined) {
    // Envoy reads the deprecated pair only while the route has no max_stream_duration ("new timeouts").
    route.maxGrpcTimeoutMs = durationMs(a.max_grpc_timeout, 0);
    route.grpcTimeoutOffsetMs = durationMs(a.grpc_timeout_offset, 0);
  }
  if (durationMs(a.idle_timeout, 0) > 0) throw new ConfigError(`${where}.idle_timeout is not supported by this proxy`);
  for (const [i, u] of (a.upgrade_configs ?? []).entries()) {
    checkRouteUpgrade(u, `${where}.upgrade_configs[${i}]`);
    route.websocket = websocketEnabled(u, `${where}.upgrade_configs[${i}]`);
  }
  route.hash = compileHashPolicy(a.hash_policy, `${where}.hash_policy`);
  const mirrors = compileMirrorPolicies(a.request_mirror_policies, `${where}.request_mirror_policies`);
  if (mirrors.length > 0) route.mirrors = mirrors;
}

/**
 * Whether an upgrade_configs entry (a route's or the HCM's) enables websocket, the one upgrade type the
 * proxy tunnels (enabled defaults to true); any other upgrade type is a ConfigError.
 */
export function websocketEnabled(u: { upgrade_type?: string; enabled?: boolean }, where: string): boolean {
  if ((u.upgrade_type ?? '').toLowerCase() !== 'websocket') throw new ConfigError(`${where}: upgrade type '${u.upgrade_type ?? ''}' is not supported`);
  return u.enabled ?? true;
}

// per_request_buffer_limit_bytes is not listed (NACKed): retries and mirrors buffer up to the listener's limit.
const checkVirtualHost = fieldTable('envoy.config.route.v3.VirtualHost', {
  name: true,
  domains: true,
  routes: true,
  require_tls: true,
  retry_policy: true,
  request_headers_to_add: true,
  request_headers_to_remove: true,
  response_headers_to_add: true,
  response_headers_to_remove: true,
  include_request_attempt_count: true,
  include_attempt_count_in_response: true,
  typed_per_filter_config: true,
  metadata: METADATA,
});

function compileVirtualHost(v: VirtualHost, ctx: CompileContext, where: string): { vhost: CompiledVirtualHost; domains: string[] } {
  checkVirtualHost(v, where);
  const name = v.name ?? '';
  const w = `${where} '${name}'`;
  const perFilter = compilePerFilterConfig(v.typed_per_filter_config, `${w}.typed_per_filter_config`);
  const requireTls = v.require_tls ?? 'NONE';
  const vhost: CompiledVirtualHost = {
    name,
    routes: [],
    index: undefined,
    includeAttemptCount: v.include_request_attempt_count === true,
    includeAttemptCountInResponse: v.include_attempt_count_in_response === true,
    requireTls: requireTls === 'ALL' ? REQUIRE_TLS_ALL : requireTls === 'EXTERNAL_ONLY' ? REQUIRE_TLS_EXTERNAL_ONLY : REQUIRE_TLS_NONE,
    retry: v.retry_policy === undefined ? undefined : compileRetry(v.retry_policy, ctx, `${w}.retry_policy`),
    cors: perFilter.cors,
    fault: perFilter.fault,
  };
  const vreq = compileHeaderMutation(v.request_headers_to_add, v.request_headers_to_remove, `${w}.request_headers_to_add`);
  const vresp = compileHeaderMutation(v.response_headers_to_add, v.response_headers_to_remove, `${w}.response_headers_to_add`);
  const nonEmpty = (l: HeaderMutation[]): readonly HeaderMutation[] => {
    const m = l.filter((x) => !isEmptyMutation(x));
    return m.length ? m : NO_MUTATIONS;
  };
  const shared: VhostShared = {
    ctx,
    reqList: nonEmpty([vreq, ctx.req]),
    respList: nonEmpty([vresp, ctx.resp]),
    corsList: vhost.cors ? [vhost.cors] : undefined,
  };
  vhost.routes = (v.routes ?? []).map((r, i) => compileRoute(r, vhost, shared, `${w}.routes[${i}]`));
  vhost.index = buildRouteIndex(vhost.routes);
  const domains = v.domains ?? [];
  if (domains.length === 0) throw new ConfigError(`${w}: at least one domain is required`);
  return { vhost, domains };
}

const checkRouteConfiguration = fieldTable('envoy.config.route.v3.RouteConfiguration', {
  name: true,
  virtual_hosts: true,
  internal_only_headers: true,
  response_headers_to_add: true,
  response_headers_to_remove: true,
  request_headers_to_add: true,
  request_headers_to_remove: true,
  max_direct_response_body_size_bytes: true,
  ignore_port_in_host_matching: true,
  most_specific_header_mutations_wins: 'only false is accepted: true is NACKed',
  ignore_path_parameters_in_path_matching: 'only false is accepted: true is NACKed',
  validate_clusters:
    'Istio sets false; with true Envoy rejects a route configuration that names an unknown cluster, which is not checked here (such a route answers cluster_not_found)',
  typed_per_filter_config: NO_EFFECT_PER_FILTER,
  metadata: METADATA,
});

/** Compiles (and validates) one RouteConfiguration. Throws ConfigError with a message naming what is wrong. */
export function compileRouteConfig(rc: RouteConfiguration): CompiledRouteConfig {
  const name = rc.name ?? '';
  const where = `route configuration '${name}'`;
  checkRouteConfiguration(rc, where);
  checkNoOpPerFilterConfig(rc.typed_per_filter_config, `${where}.typed_per_filter_config`);
  if (rc.most_specific_header_mutations_wins === true) throw new ConfigError(`${where}.most_specific_header_mutations_wins is not supported by this proxy`);
  if (rc.ignore_path_parameters_in_path_matching === true)
    throw new ConfigError(`${where}.ignore_path_parameters_in_path_matching is not supported by this proxy`);
  const req = compileHeaderMutation(rc.request_headers_to_add, rc.request_headers_to_remove, `${where}.request_headers_to_add`);
  const resp = compileHeaderMutation(rc.response_headers_to_add, rc.response_headers_to_remove, `${where}.response_headers_to_add`);
  const maxBody = rc.max_direct_response_body_size_bytes ?? 4096;
  const out: CompiledRouteConfig = {
    name,
    ignorePortInHostMatching: rc.ignore_port_in_host_matching === true,
    exact: new Map(),
    suffixWildcards: new Map(),
    suffixLengths: [],
    prefixWildcards: new Map(),
    prefixLengths: [],
    star: undefined,
    internalOnlyHeaders: (rc.internal_only_headers ?? []).map((h) => h.toLowerCase()),
    virtualHosts: [],
  };
  const ctx: CompileContext = { req, resp, retries: new Map() };
  const seen = new Set<string>();
  for (const [i, v] of (rc.virtual_hosts ?? []).entries()) {
    const { vhost, domains } = compileVirtualHost(v, ctx, `${where}.virtual_hosts[${i}]`);
    for (const r of vhost.routes) {
      if (r.action === ACTION_DIRECT && Buffer.byteLength(r.directBody, 'latin1') > maxBody) {
        throw new ConfigError(`${where}: direct response body in virtual host '${vhost.name}' is larger than ${maxBody} bytes`);
      }
    }
    out.virtualHosts.push(vhost);
    for (const d0 of domains) {
      const d = d0.toLowerCase();
      // Envoy: "Only unique values for domains are permitted" across the whole route configuration.
      if (seen.has(d)) throw new ConfigError(`${where}: only unique values for domains are permitted. Duplicate entry of domain ${d}`);
      seen.add(d);
      if (d === '*') out.star = vhost;
      else if (d.startsWith('*')) out.suffixWildcards.set(d.slice(1), vhost);
      else if (d.endsWith('*')) out.prefixWildcards.set(d.slice(0, -1), vhost);
      else out.exact.set(d, vhost);
    }
  }
  // Longest wildcard first. Two wildcards of the same length cannot both match one host, so one lookup per
  // distinct length finds the longest match.
  const longestFirst = (keys: Iterable<string>): number[] => [...new Set([...keys].map((k) => k.length))].sort((a, b) => b - a);
  out.suffixLengths = longestFirst(out.suffixWildcards.keys());
  out.prefixLengths = longestFirst(out.prefixWildcards.keys());
  return out;
}

/** Host header -> virtual host (Envoy RouteMatcher::findVirtualHost). `host` must already be lowercase. */
export function findVirtualHost(rc: CompiledRouteConfig, host: string): CompiledVirtualHost | undefined {
  if (rc.exact.size === 0 && rc.suffixLengths.length === 0 && rc.prefixLengths.length === 0) return rc.star;
  let h = host;
  if (rc.ignorePortInHostMatching) h = stripPort(h);
  const exact = rc.exact.get(h);
  if (exact) return exact;
  // A wildcard never matches the empty string: '*.foo.com' does not match '.foo.com'.
  for (const n of rc.suffixLengths) {
    if (n >= h.length) continue;
    const v = rc.suffixWildcards.get(h.slice(h.length - n));
    if (v) return v;
  }
  for (const n of rc.prefixLengths) {
    if (n >= h.length) continue;
    const v = rc.prefixWildcards.get(h.slice(0, n));
    if (v) return v;
  }
  return rc.star;
}

/** Removes a numeric `:port` (IPv6 literals keep their brackets). */
export function stripPort(host: string): string {
  const colon = host.lastIndexOf(':');
  if (colon < 0) return host;
  if (host.charCodeAt(0) === 0x5b /* [ */ && host.lastIndexOf(']') > colon) return host;
  for (let i = colon + 1; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return host;
  }
  return host.slice(0, colon);
}

interface MatchContext {
  req: MatchRequest;
  pathNoQuery: string;
  grpc: boolean;
  /** The query string's parameters, parsed when a route first needs them. */
  query: URLSearchParams | undefined;
}

/** Whether the route's whole match (path, grpc, headers, query parameters) holds for the request. */
function routeMatches(r: CompiledRoute, c: MatchContext): boolean {
  if (!pathMatches(r, c.pathNoQuery)) return false;
  if (r.grpcOnly && !c.grpc) return false;
  for (const h of r.headers) if (!h(c.req)) return false;
  if (r.query.length > 0) {
    if (!c.query) {
      const q = c.req.path.indexOf('?');
      c.query = new URLSearchParams(q < 0 ? '' : c.req.path.slice(q + 1));
    }
    for (const m of r.query) if (!m(c.query)) return false;
  }
  for (const m of r.metadata) if (!m(c.req)) return false;
  return true;
}

/** The first condition of a route's match that does not hold, as routeMismatch finds it. */
export type RouteMismatch = { part: 'path' } | { part: 'grpc' } | { part: 'headers' | 'query_parameters' | 'dynamic_metadata'; index: number };

/**
 * Why a route does not match the request: its first condition that fails, tested in routeMatches's order with
 * the route's own compiled matchers; undefined when the whole match holds. Not on the request path: explain
 * (gateway/explain) says with it why routes before the chosen one were passed over.
 */
export function routeMismatch(r: CompiledRoute, req: MatchRequest, pathNoQuery: string, grpc: boolean): RouteMismatch | undefined {
  if (!pathMatches(r, pathNoQuery)) return { part: 'path' };
  if (r.grpcOnly && !grpc) return { part: 'grpc' };
  for (const [index, h] of r.headers.entries()) if (!h(req)) return { part: 'headers', index };
  if (r.query.length > 0) {
    const q = req.path.indexOf('?');
    const query = new URLSearchParams(q < 0 ? '' : req.path.slice(q + 1));
    for (const [index, m] of r.query.entries()) if (!m(query)) return { part: 'query_parameters', index };
  }
  for (const [index, m] of r.metadata.entries()) if (!m(req)) return { part: 'dynamic_metadata', index };
  return undefined;
}

/**
 * First route of the virtual host matching the request (Envoy evaluates routes in order). `pathNoQuery`
 * is :path without query and fragment; `grpc` whether the request has a gRPC content-type. Long route lists
 * go through the virtual host's index, which gives the same route as the scan in order.
 */
export function matchRoute(vhost: CompiledVirtualHost, req: MatchRequest, pathNoQuery: string, grpc: boolean): CompiledRoute | undefined {
  const c: MatchContext = { req, pathNoQuery, grpc, query: undefined };
  if (vhost.index !== undefined) return firstMatch(vhost.index, vhost.routes, pathNoQuery, routeMatches, c);
  for (const r of vhost.routes) if (routeMatches(r, c)) return r;
  return undefined;
}

/** matchRoute without the index: every route in order (tests compare the two). */
export function matchRouteLinear(vhost: CompiledVirtualHost, req: MatchRequest, pathNoQuery: string, grpc: boolean): CompiledRoute | undefined {
  const c: MatchContext = { req, pathNoQuery, grpc, query: undefined };
  for (const r of vhost.routes) if (routeMatches(r, c)) return r;
  return undefined;
}
