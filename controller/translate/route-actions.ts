// Pieces of an Envoy route built from an Istio HTTPRoute (pilot/pkg/networking/core/route/route.go and
// route/retry/retry.go): matches, header operations, retries, faults, CORS, mirrors, hash policies.
import { typedAny, type envoy } from '../../xds/envoy.ts';
import { PREVIOUS_HOSTS_TYPE, PREVIOUS_PRIORITIES_TYPE } from '../../xds/type-urls.ts';
import type { ConsistentHashLB, CorsPolicy, HTTPFaultInjection, HTTPMatchRequest, HTTPRetry, Headers, Percent, StringMatch } from '../model/istio-types.ts';
import { GRPC_STATUS } from '../model/istio-validation.ts';
import { durationSeconds, toEnvoyDuration } from '../model/duration.ts';
import { jwtClaimListOrValue } from './rbac-matchers.ts';

type Route = envoy.config.route.v3.Route;
type HeaderValueOption = envoy.config.core.v3.HeaderValueOption;
type FractionalPercent = envoy.type.v3.FractionalPercent;

const byName = (a: { name?: string }, b: { name?: string }): number => {
  const x = a.name ?? '';
  const y = b.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
};

// ---- matches ------------------------------------------------------------------------------------

/** util.ConvertToEnvoyMatch: exact / prefix / safe_regex. */
function stringMatcher(m: StringMatch): envoy.type.matcher.v3.StringMatcher | undefined {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  if (m.regex !== undefined) return { safe_regex: { regex: m.regex } };
  return undefined;
}

/** An empty StringMatch, or regex "*" (a metacharacter, not RE2: istio#20629), means "present". */
function isPresentMatch(m: StringMatch | undefined): boolean {
  if (!m) return true;
  if (m.exact === undefined && m.prefix === undefined && m.regex === undefined) return true;
  return m.regex === '*';
}

function headerMatcher(name: string, m: StringMatch | undefined): envoy.config.route.v3.HeaderMatcher {
  if (isPresentMatch(m)) return { name, present_match: true };
  const sm = m ? stringMatcher(m) : undefined;
  return sm ? { name, string_match: sm } : { name };
}

/**
 * jwt.ToRoutingClaim: the claim path of a `@request.auth.claims.a.b` or `@request.auth.claims[a][b]` header name
 * (the prefix in any case), undefined for any other header.
 */
function routingClaim(name: string): string[] | undefined {
  const prefix = '@request.auth.claims';
  if (!name.toLowerCase().startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  if (rest.startsWith('.') && rest.length > 1) return rest.slice(1).split('.');
  if (rest.startsWith('[') && rest.endsWith(']') && rest.length > 2) return rest.slice(1, -1).split('][');
  return undefined;
}

/**
 * translateMetadataMatch: a header match on a JWT claim routes on the claims the jwt_authn filter verified (its
 * metadata), a list claim matching when one of its items does. An empty match (or `regex: "*"`) is not turned into
 * "present" here: istiod sends an empty string matcher, which Envoy refuses.
 */
function claimMatcher(claims: readonly string[], m: StringMatch | undefined, invert: boolean): envoy.type.matcher.v3.MetadataMatcher {
  const out = jwtClaimListOrValue(claims, { string_match: (m && stringMatcher(m)) ?? {} });
  return invert ? { ...out, invert: true } : out;
}

/**
 * TranslateRouteMatch: a route without a match block gets `prefix: /` alone (case_sensitive left at Envoy's default,
 * true). With Gateway API semantics a prefix other than `/` matches whole path segments (path_separated_prefix).
 */
export function routeMatch(match: HTTPMatchRequest | undefined, gatewaySemantics = false): envoy.config.route.v3.RouteMatch {
  if (!match) return { prefix: '/' };
  const out: envoy.config.route.v3.RouteMatch = {};
  if (match.uri?.exact !== undefined) out.path = match.uri.exact;
  else if (match.uri?.prefix !== undefined && gatewaySemantics && match.uri.prefix !== '/') out.path_separated_prefix = match.uri.prefix.replace(/\/$/, '');
  else if (match.uri?.prefix !== undefined) out.prefix = match.uri.prefix;
  else if (match.uri?.regex !== undefined) out.safe_regex = { regex: match.uri.regex };
  else out.prefix = '/';
  out.case_sensitive = !match.ignoreUriCase;
  const headers: envoy.config.route.v3.HeaderMatcher[] = [];
  // istiod ranges over Go maps here (random order): claims are taken in name order so output is stable.
  const byKey = ([a]: [string, unknown], [b]: [string, unknown]): number => (a < b ? -1 : a > b ? 1 : 0);
  const metadata: envoy.type.matcher.v3.MetadataMatcher[] = [];
  for (const [name, m] of Object.entries(match.headers ?? {}).sort(byKey)) {
    const claims = routingClaim(name);
    if (claims) metadata.push(claimMatcher(claims, m, false));
    else headers.push(headerMatcher(name, m));
  }
  for (const [name, m] of Object.entries(match.withoutHeaders ?? {}).sort(byKey)) {
    const claims = routingClaim(name);
    if (claims) {
      metadata.push(claimMatcher(claims, m, true));
      continue;
    }
    const h = headerMatcher(name, m);
    h.invert_match = true;
    // treat_missing_header_as_empty conflicts with present_match.
    if (!isPresentMatch(m)) h.treat_missing_header_as_empty = true;
    headers.push(h);
  }
  // Istio sorts user headers by name, then appends the pseudo-headers.
  headers.sort(byName);
  if (match.method) headers.push(headerMatcher(':method', match.method));
  if (match.authority) headers.push(headerMatcher(':authority', match.authority));
  if (match.scheme) headers.push(headerMatcher(':scheme', match.scheme));
  if (headers.length > 0) out.headers = headers;
  if (metadata.length > 0) out.dynamic_metadata = metadata;
  // istiod ranges over a Go map here (random order); sort by name so output is stable.
  const qp = Object.entries(match.queryParams ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (qp.length > 0) {
    out.query_parameters = qp.map(([name, m]) => {
      if (isPresentMatch(m)) return { name, present_match: true };
      const sm = stringMatcher(m);
      return sm ? { name, string_match: sm } : { name };
    });
  }
  return out;
}

/** IsCatchAllRoute: prefix "/" (or regex ".*") with no header, query or metadata matchers. */
export function isCatchAllRoute(r: Route): boolean {
  const m = r.match;
  if (!m) return false;
  const catchall = m.prefix === '/' || m.path_separated_prefix === '/' || m.safe_regex?.regex === '.*';
  return catchall && !m.headers?.length && !m.query_parameters?.length && !m.dynamic_metadata?.length;
}

// ---- headers ------------------------------------------------------------------------------------

export interface HeaderOps {
  requestHeadersToAdd: HeaderValueOption[];
  requestHeadersToRemove: string[];
  responseHeadersToAdd: HeaderValueOption[];
  responseHeadersToRemove: string[];
  authority: string;
}

const isInternalHeader = (k: string): boolean => k.startsWith(':') || k.toLowerCase() === 'host';
const isAuthorityHeader = (k: string): boolean => k.toLowerCase() === ':authority' || k.toLowerCase() === 'host';

function appendHeaders(headers: Record<string, string> | undefined, append: boolean): { list: HeaderValueOption[]; authority: string } {
  let authority = '';
  const list: HeaderValueOption[] = [];
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (isAuthorityHeader(key)) authority = value;
    if (isInternalHeader(key)) continue;
    list.push({ header: { key, value }, append_action: append ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD' });
  }
  const keyOf = (h: HeaderValueOption): string => h.header?.key ?? '';
  list.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  return { list, authority };
}

/** TranslateHeadersOperations: set -> OVERWRITE_IF_EXISTS_OR_ADD, add -> APPEND_IF_EXISTS_OR_ADD. */
export function headerOps(h: Headers | undefined): HeaderOps {
  const reqSet = appendHeaders(h?.request?.set, false);
  const reqAdd = appendHeaders(h?.request?.add, true);
  const respSet = appendHeaders(h?.response?.set, false);
  const respAdd = appendHeaders(h?.response?.add, true);
  return {
    requestHeadersToAdd: [...reqSet.list, ...reqAdd.list],
    requestHeadersToRemove: (h?.request?.remove ?? []).filter((k) => !isInternalHeader(k)),
    responseHeadersToAdd: [...respSet.list, ...respAdd.list],
    responseHeadersToRemove: (h?.response?.remove ?? []).filter((k) => !isInternalHeader(k)),
    // If authority is in both set and add, set wins.
    authority: reqSet.authority || reqAdd.authority,
  };
}

/** Appends the header operations to a route's own. */
export function applyHeaderOps(target: Route, ops: HeaderOps): void {
  if (ops.requestHeadersToAdd.length) target.request_headers_to_add = [...(target.request_headers_to_add ?? []), ...ops.requestHeadersToAdd];
  if (ops.requestHeadersToRemove.length) target.request_headers_to_remove = [...(target.request_headers_to_remove ?? []), ...ops.requestHeadersToRemove];
  if (ops.responseHeadersToAdd.length) target.response_headers_to_add = [...(target.response_headers_to_add ?? []), ...ops.responseHeadersToAdd];
  if (ops.responseHeadersToRemove.length) target.response_headers_to_remove = [...(target.response_headers_to_remove ?? []), ...ops.responseHeadersToRemove];
}

// ---- retries ------------------------------------------------------------------------------------

const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

function previousHostsPredicate(): envoy.config.route.v3.RetryPolicy.RetryHostPredicate[] {
  return [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: typedAny(PREVIOUS_HOSTS_TYPE, {}) }];
}

function newRetryPolicy(hashPolicy: boolean): envoy.config.route.v3.RetryPolicy {
  const p: envoy.config.route.v3.RetryPolicy = { retry_on: DEFAULT_RETRY_ON, num_retries: 2, host_selection_retry_max_attempts: '5' };
  // Avoiding the previous host defeats consistent hashing, so Istio leaves the predicate out then.
  if (!hashPolicy) p.retry_host_predicate = previousHostsPredicate();
  return p;
}

/** http.StatusText != "" in Go: the codes net/http knows. */
const KNOWN_STATUS = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408,
  409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

/**
 * retry.ConvertPolicy. No `retries`: Istio's default (2 retries on connect-failure, refused-stream,
 * unavailable, cancelled; no 503 since 1.24). `attempts <= 0`: no retry policy at all.
 */
export function retryPolicy(r: HTTPRetry | undefined, hashPolicy: boolean): envoy.config.route.v3.RetryPolicy | undefined {
  if (!r) return newRetryPolicy(hashPolicy);
  if (!r.attempts || r.attempts <= 0) return undefined;
  const out = newRetryPolicy(hashPolicy);
  out.num_retries = r.attempts;
  if (r.retryOn) {
    const codes: number[] = [];
    const rest: string[] = [];
    for (const part of r.retryOn
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const n = /^\d+$/.test(part) ? Number(part) : NaN;
      if (KNOWN_STATUS.has(n)) codes.push(n);
      else rest.push(part);
    }
    let retryOn = rest.join(',');
    if (codes.length > 0 && !retryOn.includes('retriable-status-codes')) retryOn += ',retriable-status-codes';
    out.retry_on = retryOn;
    if (codes.length > 0) out.retriable_status_codes = codes;
  }
  const perTry = toEnvoyDuration(r.perTryTimeout);
  if (perTry !== undefined) out.per_try_timeout = perTry;
  if (r.retryIgnorePreviousHosts !== undefined) {
    if (r.retryIgnorePreviousHosts) out.retry_host_predicate = previousHostsPredicate();
    else delete out.retry_host_predicate;
  }
  // retryRemoteLocalities: retries go to priorities not tried yet, re-evaluated every second attempt (as istiod).
  if (r.retryRemoteLocalities === true)
    out.retry_priority = { name: 'envoy.retry_priorities.previous_priorities', typed_config: typedAny(PREVIOUS_PRIORITIES_TYPE, { update_frequency: 2 }) };
  const backoff = toEnvoyDuration(r.backoff);
  if (backoff !== undefined) out.retry_back_off = { base_interval: backoff };
  return out;
}

// ---- fault and CORS -----------------------------------------------------------------------------

/** A Percent (0..100, fractional) as a MILLION-denominator fraction; an integer percent as HUNDRED. */
function percentToFraction(p: Percent): FractionalPercent {
  return { numerator: Math.round((p.value ?? 0) * 10000), denominator: 'MILLION' };
}

function integerToFraction(n: number): FractionalPercent {
  return { numerator: n, denominator: 'HUNDRED' };
}

/** TranslateFault: fixed delays and HTTP/gRPC aborts (exponential delays are not supported by Istio). */
export function faultConfig(f: HTTPFaultInjection): envoy.extensions.filters.http.fault.v3.HTTPFault | undefined {
  const out: envoy.extensions.filters.http.fault.v3.HTTPFault = {};
  if (f.delay?.fixedDelay !== undefined) {
    out.delay = {
      fixed_delay: toEnvoyDuration(f.delay.fixedDelay),
      percentage: f.delay.percentage ? percentToFraction(f.delay.percentage) : integerToFraction(f.delay.percent ?? 0),
    };
  }
  if (f.abort) {
    const abort: envoy.extensions.filters.http.fault.v3.FaultAbort = {};
    if (f.abort.percentage) abort.percentage = percentToFraction(f.abort.percentage);
    if (f.abort.httpStatus !== undefined) abort.http_status = f.abort.httpStatus;
    else if (f.abort.grpcStatus !== undefined) abort.grpc_status = GRPC_STATUS[f.abort.grpcStatus] ?? 2;
    if (abort.http_status !== undefined || abort.grpc_status !== undefined) out.abort = abort;
  }
  return out.delay || out.abort ? out : undefined;
}

/** TranslateCORSPolicy. */
export function corsPolicy(c: CorsPolicy): envoy.extensions.filters.http.cors.v3.CorsPolicy {
  const out: envoy.extensions.filters.http.cors.v3.CorsPolicy = {};
  if (c.allowOrigins) out.allow_origin_string_match = c.allowOrigins.map((m) => stringMatcher(m) ?? {});
  else if (c.allowOrigin) out.allow_origin_string_match = c.allowOrigin.map((o) => ({ exact: o }));
  out.filter_enabled = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
  if (c.allowCredentials !== undefined) out.allow_credentials = c.allowCredentials;
  out.allow_headers = (c.allowHeaders ?? []).join(',');
  out.allow_methods = (c.allowMethods ?? []).join(',');
  out.expose_headers = (c.exposeHeaders ?? []).join(',');
  const maxAge = durationSeconds(c.maxAge);
  if (maxAge !== undefined) out.max_age = String(maxAge);
  out.forward_not_matching_preflights = c.unmatchedPreflights !== 'IGNORE';
  return out;
}

// ---- mirrors and hashing ------------------------------------------------------------------------

/** MirrorPercent: explicit 0 means no mirror; no percentage means 100%. */
export function mirrorFraction(percentage: Percent | undefined, legacyPercent: number | undefined): envoy.config.core.v3.RuntimeFractionalPercent | undefined {
  if (percentage) return (percentage.value ?? 0) > 0 ? { default_value: percentToFraction(percentage) } : undefined;
  if (legacyPercent !== undefined) return legacyPercent > 0 ? { default_value: integerToFraction(legacyPercent) } : undefined;
  return { default_value: integerToFraction(100) };
}

/** ConsistentHashToHashPolicy. */
export function hashPolicy(ch: ConsistentHashLB | undefined): envoy.config.route.v3.RouteAction.HashPolicy | undefined {
  if (!ch) return undefined;
  if (ch.httpHeaderName !== undefined) return { header: { header_name: ch.httpHeaderName } };
  if (ch.httpCookie) {
    const cookie: envoy.config.route.v3.RouteAction.HashPolicy.Cookie = { name: ch.httpCookie.name };
    const ttl = toEnvoyDuration(ch.httpCookie.ttl);
    if (ttl !== undefined) cookie.ttl = ttl;
    if (ch.httpCookie.path) cookie.path = ch.httpCookie.path;
    if (ch.httpCookie.attributes?.length) cookie.attributes = ch.httpCookie.attributes.map((a) => ({ name: a.name, value: a.value ?? '' }));
    return { cookie };
  }
  if (ch.useSourceIp) return { connection_properties: { source_ip: true } };
  if (ch.httpQueryParameterName !== undefined) return { query_parameter: { name: ch.httpQueryParameterName } };
  return undefined;
}
