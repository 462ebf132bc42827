// Envoy route pieces in words, for explain: a route's match conditions, why one of them fails for a request,
// and the Istio object a resource came from (the filter_metadata istiod writes on routes and clusters).
import type { envoy } from '../../xds/envoy.ts';
import type { RouteMismatch } from '../router/route-config.ts';
import { joinedHeaderValue } from '../../xds/header-list.ts';

type RouteMatch = envoy.config.route.v3.RouteMatch;
type HeaderMatcher = envoy.config.route.v3.HeaderMatcher;
type StringMatcher = envoy.type.matcher.v3.StringMatcher;

/** An Istio object, as istiod names it in a resource's metadata. */
export interface IstioRef {
  kind: string;
  namespace: string;
  name: string;
  /** Offline only: the file (and document) the object was read from. */
  file?: string;
}

// istiod's config path kinds (pkg/config/schema: the kebab-case kind in /apis/<group>/<version>/namespaces/<ns>/<kind>/<name>).
const KINDS: Record<string, string> = {
  'virtual-service': 'VirtualService',
  'destination-rule': 'DestinationRule',
  gateway: 'Gateway',
  'service-entry': 'ServiceEntry',
  'envoy-filter': 'EnvoyFilter',
  sidecar: 'Sidecar',
};

/** The object of a resource's `metadata.filter_metadata.istio.config`, e.g. /apis/networking.istio.io/v1/namespaces/default/virtual-service/httpbin. */
export function istioConfigRef(metadata: envoy.config.core.v3.Metadata | undefined): IstioRef | undefined {
  const config = (metadata?.filter_metadata?.istio as { config?: unknown } | undefined)?.config;
  if (typeof config !== 'string') return undefined;
  const m = /^\/apis\/[^/]+\/[^/]+\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(config);
  if (!m) return undefined;
  const [, namespace = '', kind = '', name = ''] = m;
  return { kind: KINDS[kind] ?? kind, namespace, name };
}

/** The Services of a cluster's `metadata.filter_metadata.istio.services` (istiod: the cluster's Kubernetes Service or ServiceEntry host). */
export function istioServices(metadata: envoy.config.core.v3.Metadata | undefined): IstioRef[] {
  const services = (metadata?.filter_metadata?.istio as { services?: unknown } | undefined)?.services;
  if (!Array.isArray(services)) return [];
  return services.flatMap((s: { name?: unknown; namespace?: unknown }) =>
    typeof s.name === 'string' && typeof s.namespace === 'string' ? [{ kind: 'Service', namespace: s.namespace, name: s.name }] : [],
  );
}

function stringMatcher(m: StringMatcher): string {
  const ic = m.ignore_case === true ? ' (any case)' : '';
  if (m.exact !== undefined) return `exact '${m.exact}'${ic}`;
  if (m.prefix !== undefined) return `prefix '${m.prefix}'${ic}`;
  if (m.suffix !== undefined) return `suffix '${m.suffix}'${ic}`;
  if (m.contains !== undefined) return `contains '${m.contains}'${ic}`;
  if (m.safe_regex !== undefined) return `regex '${m.safe_regex.regex ?? ''}'`;
  return 'any value';
}

function headerCondition(h: HeaderMatcher): string {
  let c: string;
  if (h.exact_match !== undefined) c = `exact '${h.exact_match}'`;
  else if (h.safe_regex_match !== undefined) c = `regex '${h.safe_regex_match.regex ?? ''}'`;
  else if (h.prefix_match !== undefined) c = `prefix '${h.prefix_match}'`;
  else if (h.suffix_match !== undefined) c = `suffix '${h.suffix_match}'`;
  else if (h.contains_match !== undefined) c = `contains '${h.contains_match}'`;
  else if (h.string_match !== undefined) c = stringMatcher(h.string_match);
  else if (h.range_match !== undefined) c = `in [${String(h.range_match.start ?? 0)}, ${String(h.range_match.end ?? 0)})`;
  else c = h.present_match === false ? 'absent' : 'present';
  return h.invert_match === true ? `not ${c}` : c;
}

function pathCondition(m: RouteMatch): string {
  const ic = m.case_sensitive === false ? ' (any case)' : '';
  if (m.prefix !== undefined) return m.prefix === '' || m.prefix === '/' ? 'any path' : `path prefix ${m.prefix}${ic}`;
  if (m.path !== undefined) return `path ${m.path}${ic}`;
  if (m.safe_regex !== undefined) return `path regex '${m.safe_regex.regex ?? ''}'`;
  if (m.path_separated_prefix !== undefined) return `path prefix ${m.path_separated_prefix}/ (or exactly ${m.path_separated_prefix})${ic}`;
  return 'no path condition';
}

/** A route's match in one line: `path prefix /status, :method exact 'GET', query user exact 'x'`. */
export function describeMatch(m: RouteMatch | undefined): string {
  const match = m ?? {};
  const parts = [pathCondition(match)];
  if (match.grpc !== undefined) parts.push('gRPC requests only');
  for (const h of match.headers ?? []) parts.push(`${h.name ?? ''} ${headerCondition(h)}`);
  for (const q of match.query_parameters ?? []) parts.push(`query ${q.name ?? ''} ${q.string_match ? stringMatcher(q.string_match) : 'present'}`);
  if ((match.dynamic_metadata ?? []).length > 0) parts.push('JWT claim conditions');
  return parts.join(', ');
}

/** The request a mismatch is about: what the route's conditions were tested against. */
export interface TestedRequest {
  method: string;
  authority: string;
  /** :path as routed (normalized, with query). */
  path: string;
  pathNoQuery: string;
  scheme: string;
  /** Flat [name, value, ...], lowercase names. */
  headers: readonly string[];
}

function headerValue(req: TestedRequest, name: string): string | undefined {
  switch (name) {
    case ':method':
      return req.method;
    case ':authority':
    case 'host':
      return req.authority;
    case ':path':
      return req.path;
    case ':scheme':
      return req.scheme;
    default:
      return joinedHeaderValue(req.headers, name);
  }
}

/** Why the route was passed over, in one phrase: `path /anything is not path prefix /status`. */
export function describeMismatch(m: RouteMatch | undefined, mismatch: RouteMismatch, req: TestedRequest): string {
  const match = m ?? {};
  switch (mismatch.part) {
    case 'path':
      return `path ${req.pathNoQuery} does not match ${pathCondition(match)}`;
    case 'grpc':
      return 'the route takes gRPC requests only (content-type application/grpc)';
    case 'headers': {
      const h = match.headers?.[mismatch.index] ?? {};
      const name = (h.name ?? '').toLowerCase();
      const v = headerValue(req, name);
      const what = name === ':method' ? `method ${v ?? ''}` : v === undefined ? `header ${name} is absent` : `header ${name}: '${v}'`;
      return name === ':method' || v !== undefined
        ? `${what} does not match ${name} ${headerCondition(h)}`
        : `${what}, the route needs ${name} ${headerCondition(h)}`;
    }
    case 'query_parameters': {
      const q = match.query_parameters?.[mismatch.index] ?? {};
      const i = req.path.indexOf('?');
      const v = new URLSearchParams(i < 0 ? '' : req.path.slice(i + 1)).get(q.name ?? '');
      const cond = q.string_match ? stringMatcher(q.string_match) : 'present';
      return v === null
        ? `query parameter ${q.name ?? ''} is absent, the route needs it ${cond}`
        : `query parameter ${q.name ?? ''}='${v}' does not match ${cond}`;
    }
    case 'dynamic_metadata':
      return 'a JWT claim condition does not hold (claims are known only once a request carries a verified token)';
  }
}
