// One VirtualService bound to one Gateway -> Envoy routes (route.go BuildHTTPRoutesForVirtualService,
// TranslateRoute, applyHTTPRouteDestination, ApplyRedirect, ApplyDirectResponse, GetRouteOperation).
import { typedAny, type Any, type envoy } from '../../xds/envoy.ts';
import { CORS_POLICY_TYPE, FAULT_TYPE } from '../../xds/type-urls.ts';
import type { PushContext } from '../model/push-context.ts';
import type { VirtualServiceConfig } from '../model/virtual-services.ts';
import type { ConsistentHashLB, Destination, HTTPMatchRequest, HTTPRedirect, HTTPRoute, HTTPRouteDestination } from '../model/istio-types.ts';
import { configPath } from '../model/config.ts';
import { isSubset } from '../model/labels.ts';
import { parseDuration, envoyDuration } from '../model/duration.ts';
import { clusterName, parseClusterName } from './envoy.ts';
import { applyHeaderOps, corsPolicy, faultConfig, hashPolicy, headerOps, isCatchAllRoute, mirrorFraction, retryPolicy, routeMatch } from './route-actions.ts';

type Route = envoy.config.route.v3.Route;
type RouteAction = envoy.config.route.v3.RouteAction;

export interface RouteContext {
  push: PushContext;
  /** The Gateway server port (not the target port): `match.port`, redirects and default cluster ports. */
  listenPort: number;
  /** `<ns>/<name>` of the Gateway whose server is being built. */
  gatewayName: string;
  isTLS: boolean;
}

/**
 * GetDestinationCluster: destination port, else the service's only port, else the listener port. HTTP routes
 * look the service up preferring the VirtualService's namespace (vsNamespace); TCP and TLS routes take the
 * gateway's own service for the host (ServiceForHostname).
 */
export function destinationCluster(ctx: RouteContext, d: Destination, vsNamespace: string | undefined): string {
  if (!d.host) return 'UnknownService';
  let port = ctx.listenPort;
  if (d.port?.number !== undefined) port = d.port.number;
  else {
    const svc = ctx.push.serviceFor(d.host, vsNamespace);
    if (svc && svc.ports.length === 1 && svc.ports[0]) port = svc.ports[0].port;
  }
  return clusterName(port, d.subset ?? '', d.host);
}

/** HashForHTTPDestination: subset port-level, subset, DR port-level, then DR top-level consistentHash. */
function consistentHashFor(ctx: RouteContext, d: Destination): ConsistentHashLB | undefined {
  // istiod looks DestinationRules up through the gateway's own service for the host (SidecarScope.DestinationRule,
  // whatever namespace the VirtualService is in): a host without one has no consistent hash.
  const svc = ctx.push.serviceFor(d.host);
  const dr = svc ? ctx.push.destinationRules.lookup(svc.hostname, svc.namespace) : undefined;
  if (!dr) return undefined;
  const top = dr.trafficPolicy?.loadBalancer?.consistentHash;
  const pls = d.port?.number !== undefined ? dr.trafficPolicy?.portLevelSettings?.find((p) => p.port?.number === d.port?.number) : undefined;
  const subset = dr.subsets.find((s) => s.name === (d.subset ?? ''));
  const subsetHash = subset?.trafficPolicy?.loadBalancer?.consistentHash;
  const subsetPls =
    d.port?.number !== undefined
      ? subset?.trafficPolicy?.portLevelSettings?.find((p) => p.port?.number === d.port?.number)?.loadBalancer?.consistentHash
      : undefined;
  return subsetPls ?? subsetHash ?? pls?.loadBalancer?.consistentHash ?? top;
}

/** sourceMatchHTTP: `match.gateways` must name this gateway; otherwise sourceLabels/sourceNamespace apply to the gateway proxy. */
function sourceMatches(ctx: RouteContext, m: HTTPMatchRequest | undefined): boolean {
  if (!m) return true;
  if (m.gateways?.length) return m.gateways.includes(ctx.gatewayName);
  if (!isSubset(m.sourceLabels, ctx.push.identity.labels)) return false;
  return !m.sourceNamespace || m.sourceNamespace === ctx.push.identity.namespace;
}

function redirectAction(r: HTTPRedirect, listenPort: number, isTLS: boolean): envoy.config.route.v3.RedirectAction | undefined {
  const out: envoy.config.route.v3.RedirectAction = {};
  if (r.authority) out.host_redirect = r.authority;
  // The path specifier is always set: an empty path_redirect keeps the request path.
  if (r.prefixRewrite) out.prefix_rewrite = r.prefixRewrite;
  else out.path_redirect = r.uri ?? '';
  if (r.scheme) out.scheme_redirect = r.scheme;
  if (r.port !== undefined || r.derivePort !== undefined) {
    let port = 0;
    if (r.port !== undefined) port = r.port;
    else if (r.derivePort === 'FROM_REQUEST_PORT') port = listenPort;
    const scheme = r.scheme || (isTLS ? 'https' : 'http');
    // No explicit :80 for http or :443 for https.
    if ((port === 80 && scheme === 'http') || (port === 443 && scheme === 'https')) port = 0;
    if (port !== 0) out.port_redirect = port;
  }
  const codes: Readonly<Record<number, envoy.config.route.v3.RedirectAction.RedirectResponseCode>> = {
    0: 'MOVED_PERMANENTLY',
    301: 'MOVED_PERMANENTLY',
    302: 'FOUND',
    303: 'SEE_OTHER',
    307: 'TEMPORARY_REDIRECT',
    308: 'PERMANENT_REDIRECT',
  };
  const code = codes[r.redirectCode ?? 0];
  if (!code) return undefined;
  out.response_code = code;
  return out;
}

/**
 * TranslateRequestMirrorPolicy. Istio >= 1.28 sets disable_shadow_host_suffix_append (DISABLE_SHADOW_HOST_SUFFIX
 * defaults to true): mirrored requests keep the original Host instead of `<host>-shadow`.
 */
function mirrorPolicy(cluster: string, fraction: envoy.config.core.v3.RuntimeFractionalPercent): envoy.config.route.v3.RouteAction.RequestMirrorPolicy {
  return { cluster, runtime_fraction: fraction, trace_sampled: false, disable_shadow_host_suffix_append: true };
}

function weightedCluster(ctx: RouteContext, d: HTTPRouteDestination, vsNs: string): envoy.config.route.v3.WeightedCluster.ClusterWeight {
  const out: envoy.config.route.v3.WeightedCluster.ClusterWeight = { name: destinationCluster(ctx, d.destination, vsNs), weight: d.weight ?? 0 };
  if (d.headers) {
    const ops = headerOps(d.headers);
    if (ops.requestHeadersToAdd.length) out.request_headers_to_add = ops.requestHeadersToAdd;
    if (ops.requestHeadersToRemove.length) out.request_headers_to_remove = ops.requestHeadersToRemove;
    if (ops.responseHeadersToAdd.length) out.response_headers_to_add = ops.responseHeadersToAdd;
    if (ops.responseHeadersToRemove.length) out.response_headers_to_remove = ops.responseHeadersToRemove;
    if (ops.authority) out.host_rewrite_literal = ops.authority;
  }
  return out;
}

function routeAction(ctx: RouteContext, vs: VirtualServiceConfig, r: HTTPRoute, route: Route, authorityIn: string): RouteAction {
  const action: RouteAction = {};
  // Gateway API: a backend that does not resolve answers 500, not 503.
  if (vs.gatewaySemantics) action.cluster_not_found_response_code = 'INTERNAL_SERVER_ERROR';
  let authority = authorityIn;
  if (r.rewrite) {
    if (r.rewrite.uriRegexRewrite?.match !== undefined) {
      action.regex_rewrite = { pattern: { regex: r.rewrite.uriRegexRewrite.match }, substitution: r.rewrite.uriRegexRewrite.rewrite ?? '' };
    } else if (r.rewrite.uri === '/' && vs.gatewaySemantics) {
      // ReplacePrefixMatch `/`: the matched prefix is removed, keeping a `/` when nothing is left.
      action.regex_rewrite = { pattern: { regex: `^${quoteMeta(route.match?.path_separated_prefix ?? '')}(/?)(.*)` }, substitution: '/\\2' };
    } else if (r.rewrite.uri) action.prefix_rewrite = r.rewrite.uri;
    if (r.rewrite.authority) authority = r.rewrite.authority;
  }
  const mirrors: envoy.config.route.v3.RouteAction.RequestMirrorPolicy[] = [];
  if (r.mirror) {
    const f = mirrorFraction(r.mirrorPercentage, r.mirrorPercent);
    if (f) mirrors.push(mirrorPolicy(destinationCluster(ctx, r.mirror, vs.namespace), f));
  }
  for (const m of r.mirrors ?? []) {
    const f = mirrorFraction(m.percentage, undefined);
    if (f) mirrors.push(mirrorPolicy(destinationCluster(ctx, m.destination, vs.namespace), f));
  }
  if (mirrors.length) action.request_mirror_policies = mirrors;
  const dests = r.route ?? [];
  const hashes: envoy.config.route.v3.RouteAction.HashPolicy[] = [];
  let consistentHash = false;
  if (dests.length === 1 && dests[0]) {
    const d = dests[0];
    action.cluster = destinationCluster(ctx, d.destination, vs.namespace);
    if (d.headers) {
      const ops = headerOps(d.headers);
      applyHeaderOps(route, ops);
      // A rewrite or route-level authority wins over a per-destination one.
      if (ops.authority && !authority) authority = ops.authority;
    }
    const h = hashPolicy(consistentHashFor(ctx, d.destination));
    if (h) {
      hashes.push(h);
      consistentHash = true;
    }
  } else {
    const clusters: envoy.config.route.v3.WeightedCluster.ClusterWeight[] = [];
    for (const d of dests) {
      // Zero-weight destinations are dropped; total_weight is left to Envoy (the sum).
      if (!d.weight) continue;
      clusters.push(weightedCluster(ctx, d, vs.namespace));
      const h = hashPolicy(consistentHashFor(ctx, d.destination));
      if (h) hashes.push(h);
    }
    action.weighted_clusters = { clusters };
  }
  if (authority) action.host_rewrite_literal = authority;
  // Istio always sets the route timeout: 0s (disabled) unless the VirtualService sets one, overriding
  // Envoy's 15s default; max_grpc_timeout mirrors it.
  const timeoutNs = parseDuration(r.timeout) ?? 0;
  action.timeout = envoyDuration(timeoutNs);
  action.max_grpc_timeout = envoyDuration(timeoutNs);
  const retry = retryPolicy(r.retries, consistentHash);
  if (retry) action.retry_policy = retry;
  if (hashes.length) action.hash_policy = hashes;
  return action;
}

/** Go's regexp.QuoteMeta. */
function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** GetRouteOperation: `<host>:<port><path>` for one outbound cluster, else `<vsName>:<listenPort><path>`. */
function decoratorOperation(route: Route, vsName: string, listenPort: number): string {
  const m = route.match;
  let path = '/*';
  if (m?.prefix !== undefined) path = `${m.prefix}*`;
  else if (m?.path !== undefined) path = m.path;
  else if (m?.safe_regex) path = m.safe_regex.regex ?? '';
  const cluster = route.route?.cluster;
  const parsed = cluster !== undefined ? parseClusterName(cluster) : undefined;
  if (parsed) return `${parsed.host}:${parsed.port}${path}`;
  return `${vsName}:${listenPort}${path}`;
}

function translateRoute(ctx: RouteContext, vs: VirtualServiceConfig, r: HTTPRoute, match: HTTPMatchRequest | undefined): Route | undefined {
  if (match?.port !== undefined && match.port !== 0 && match.port !== ctx.listenPort) return undefined;
  if (!sourceMatches(ctx, match)) return undefined;
  const out: Route = {};
  const name = (r.name ?? '') + (match?.name ? `.${match.name}` : '');
  if (name) out.name = name;
  out.match = routeMatch(match, vs.gatewaySemantics);
  out.metadata = { filter_metadata: { istio: { config: configPath('virtual-service', vs.namespace, vs.name) } } };
  if (match?.statPrefix) out.stat_prefix = match.statPrefix;
  let authority = '';
  if (r.headers) {
    const ops = headerOps(r.headers);
    applyHeaderOps(out, ops);
    authority = ops.authority;
  }
  if (r.redirect) {
    const redirect = redirectAction(r.redirect, ctx.listenPort, ctx.isTLS);
    if (redirect) out.redirect = redirect;
  } else if (r.directResponse) {
    const dr: envoy.config.route.v3.DirectResponseAction = { status: r.directResponse.status };
    if (r.directResponse.body?.string !== undefined) dr.body = { inline_string: r.directResponse.body.string };
    else if (r.directResponse.body?.bytes !== undefined) dr.body = { inline_bytes: r.directResponse.body.bytes };
    out.direct_response = dr;
  } else {
    out.route = routeAction(ctx, vs, r, out, authority);
  }
  out.decorator = { operation: decoratorOperation(out, vs.name, ctx.listenPort) };
  const perFilter: { [filter: string]: Any } = {};
  if (r.fault) {
    const f = faultConfig(r.fault);
    if (f) perFilter['envoy.filters.http.fault'] = typedAny(FAULT_TYPE, f);
  }
  if (r.corsPolicy) perFilter['envoy.filters.http.cors'] = typedAny(CORS_POLICY_TYPE, corsPolicy(r.corsPolicy));
  if (Object.keys(perFilter).length) out.typed_per_filter_config = perFilter;
  return out;
}

/**
 * BuildHTTPRoutesForVirtualService: one route per match block (a rule without match gives one prefix "/"
 * route), skipping matches for other ports or gateways, and stopping after the first catch-all, as
 * nothing after it could ever match. Delegate rules were merged into their root before
 * (mergeDelegates); a rule still carrying `delegate` (a second level) is skipped, as istiod does.
 */
export function buildHTTPRoutesForVirtualService(ctx: RouteContext, vs: VirtualServiceConfig): Route[] {
  const out: Route[] = [];
  let catchAll = false;
  for (const r of vs.spec.http ?? []) {
    if (r.delegate) continue;
    if (!r.match?.length) {
      const route = translateRoute(ctx, vs, r, undefined);
      if (route) out.push(route);
      catchAll = true;
    } else {
      for (const m of r.match) {
        const route = translateRoute(ctx, vs, r, m);
        if (!route) continue;
        out.push(route);
        if (isCatchAllRoute(route)) {
          catchAll = true;
          break;
        }
      }
    }
    if (catchAll) break;
  }
  return out;
}
