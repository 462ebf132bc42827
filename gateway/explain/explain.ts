// `meshgate explain`'s engine: which listener, filter chain, virtual host, route and cluster a request would meet,
// and why, worked out on Envoy resources (a live gateway's /config_dump and /clusters, or the translation of a
// config directory) with the data plane's own code: parseListener and FilterChainMatcher pick the chain,
// compileRouteConfig, findVirtualHost and matchRoute the virtual host and route, Host's health flags the usable
// endpoints. Pure: no clock, network or file system.
import type { envoy } from '../../xds/envoy.ts';
import { parseListener, type ListenerSpec } from '../listener/listener-config.ts';
import { FilterChainMatcher, type FilterChainSpec } from '../listener/filter-chains.ts';
import type { HcmSpec, HttpFilterSpec } from '../http/hcm-config.ts';
import { decideHttpRbac, type RbacRequest } from '../rbac/engine.ts';
import { normalizePath } from '../http/path.ts';
import { isGrpcContentType } from '../http/local-reply.ts';
import {
  ACTION_DIRECT,
  ACTION_REDIRECT,
  REQUIRE_TLS_NONE,
  compileRouteConfig,
  findVirtualHost,
  matchRoute,
  routeMismatch,
  stripPort,
  type CompiledRoute,
  type CompiledRouteConfig,
} from '../router/route-config.ts';
import { HEALTH_BY_NAME, Host } from '../upstream/host.ts';
import { HCM_TYPE } from '../../xds/type-urls.ts';
import { describeMatch, describeMismatch, istioConfigRef, istioServices, type IstioRef, type TestedRequest } from './describe.ts';

type Listener = envoy.config.listener.v3.Listener;
type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;
type Route = envoy.config.route.v3.Route;
type Cluster = envoy.config.cluster.v3.Cluster;
type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;
type ClusterStatus = envoy.admin.v3.ClusterStatus;

export interface ExplainRequest {
  host: string;
  path: string;
  method: string;
  /** Request headers, names in any case. */
  headers: readonly (readonly [string, string])[];
  /** The port the client connects to: a listener's port, or a Gateway server port (istiod's virtual host names carry it); default 80, 443 with tls. */
  port?: number;
  /** The TLS server name; default the host when tls. */
  sni?: string;
  tls: boolean;
  /** The client's address, as AuthorizationPolicy ipBlocks and remoteIpBlocks see it (default 127.0.0.1). */
  client?: string;
}

const DEFAULT_CLIENT = '127.0.0.1';

/** The Envoy resources explained against. */
export interface EnvoyConfig {
  listeners: readonly Listener[];
  routes: readonly RouteConfiguration[];
  clusters: readonly Cluster[];
  endpoints: readonly ClusterLoadAssignment[];
  /** A live gateway's /clusters?format=json: endpoint health as the proxy sees it (EDS health, outlier ejection), active requests. */
  clusterStatuses?: readonly ClusterStatus[];
}

/** Why the request ends where it does. */
type Outcome =
  | 'forwarded'
  | 'redirect'
  | 'direct_response'
  | 'no_listener'
  | 'no_filter_chain'
  | 'no_route_configuration'
  | 'path_rejected'
  | 'no_virtual_host'
  | 'no_route'
  | 'cluster_not_found'
  | 'no_healthy_upstream'
  | 'rbac_denied';

interface EndpointExplanation {
  address: string;
  /** EDS health (HEALTHY, UNHEALTHY, DRAINING, DEGRADED, TIMEOUT, UNKNOWN). */
  health: string;
  /** Live only: ejected by outlier detection. */
  outlierEjected?: boolean;
  /** Whether the load balancer may pick it (healthy, or degraded while the level has no healthy host). */
  usable: boolean;
  weight: number;
  priority: number;
  /** Live only: requests in flight. */
  activeRequests?: number;
}

export interface ClusterExplanation {
  name: string;
  /** Share of the route's traffic, in percent (weighted clusters); 100 otherwise. */
  percent: number;
  found: boolean;
  type?: string;
  /** The DestinationRule (istiod's filter_metadata istio config) and the Services behind the cluster. */
  source?: IstioRef;
  services: IstioRef[];
  subset?: string;
  endpoints: EndpointExplanation[];
  /** The default-priority circuit-breaker thresholds, and live the requests in flight against max_requests. */
  circuitBreakers?: { maxConnections?: number; maxPendingRequests?: number; maxRequests?: number; maxRetries?: number; activeRequests?: number };
  outlierDetection?: { consecutive5xx?: number; interval?: string; baseEjectionTime?: string; maxEjectionPercent?: number; ejected?: number };
  /** Every endpoint is unusable but the panic threshold lets the load balancer use them anyway. */
  panic: boolean;
  outcome: 'forwarded' | 'cluster_not_found' | 'no_healthy_upstream';
  /** Set when the outcome is not forwarded: one sentence. */
  why?: string;
}

interface SkippedRoute {
  index: number;
  name: string;
  match: string;
  reason: string;
  source?: IstioRef;
}

export interface RouteActionExplanation {
  kind: 'route' | 'redirect' | 'direct_response';
  /** redirect / direct_response. */
  status?: number;
  location?: string;
  body?: string;
  prefixRewrite?: string;
  regexRewrite?: string;
  hostRewrite?: string;
  /** Route timeout in ms; 0 disables it. */
  timeoutMs?: number;
  retries?: { retryOn: string; numRetries: number; perTryTimeoutMs: number };
  fault?: { delayMs: number; delayPercent: number; abortStatus: number; abortPercent: number };
  mirrors?: { cluster: string; percent: number }[];
  cors?: boolean;
  clusterHeader?: string;
}

interface PolicyStep {
  filter: 'rbac' | 'jwt_authn' | 'ext_authz';
  /** rbac: its decision for the request; the others are not evaluated (they need a token or a call). */
  result: 'allowed' | 'denied' | 'not evaluated';
  /** rbac: the policy that decided (istiod's `ns[NS]-policy[NAME]-rule[N]`), if any. */
  policy?: string;
  source?: IstioRef;
  /** rbac denial: Envoy's response code details. */
  details?: string;
  note?: string;
}

export interface Explanation {
  request: { host: string; path: string; method: string; port: number; tls: boolean; sni?: string };
  listener?: { name: string; address: string; port: number; gatewayPort?: number };
  filterChain?: { index: number; serverNames: string[]; transportProtocol: string; tls: boolean; filter: 'http_connection_manager' | 'tcp_proxy' };
  routeConfiguration?: string;
  virtualHost?: { name: string; domains: string[]; matchedDomain: string };
  /** The HTTP filters before the router that can stop the request (AuthorizationPolicy, RequestAuthentication), in chain order. */
  policies?: PolicyStep[];
  /** The routes of the virtual host tested before the one that matched (all of them when none did), and why each did not match. */
  skippedRoutes: SkippedRoute[];
  route?: { index: number; name: string; match: string; source?: IstioRef; action: RouteActionExplanation };
  clusters: ClusterExplanation[];
  /** The gateway's own answer: its HTTP status; absent when the upstream answers, or when the connection is refused or closed. */
  status?: number;
  /** Envoy's response code details (route_not_found, no_healthy_upstream, ...) where it has one. */
  details: string;
  outcome: Outcome;
  /** Whether the request is served (forwarded to a usable endpoint, redirected or answered by its route). */
  served: boolean;
  /** When not served: why, in one sentence. */
  why?: string;
}

const listenerPort = (l: Listener): number => l.address?.socket_address?.port_value ?? 0;

/** The Gateway server ports a listener serves, read from istiod's virtual host names (`host:port`) of its route configurations. */
function gatewayPorts(l: Listener, routes: readonly RouteConfiguration[]): Set<number> {
  const out = new Set<number>();
  for (const fc of l.filter_chains ?? []) {
    for (const f of fc.filters ?? []) {
      if (f.typed_config?.['@type'] !== HCM_TYPE) continue;
      const name = (f.typed_config as envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager).rds?.route_config_name;
      const rc = routes.find((r) => r.name === name);
      for (const v of rc?.virtual_hosts ?? []) {
        const m = /:(\d+)$/.exec(v.name ?? '');
        if (m) out.add(Number(m[1]));
      }
    }
  }
  return out;
}

/** The listener on `port`: by its own port first, else by the Gateway port its virtual hosts carry (Service port 80 -> listener 8080). */
function selectListener(
  listeners: readonly Listener[],
  routes: readonly RouteConfiguration[],
  port: number,
): { listener: Listener; gatewayPort?: number } | undefined {
  const own = listeners.find((l) => listenerPort(l) === port);
  if (own) return { listener: own };
  const byGateway = listeners.find((l) => gatewayPorts(l, routes).has(port));
  return byGateway ? { listener: byGateway, gatewayPort: port } : undefined;
}

function flatHeaders(req: ExplainRequest): string[] {
  const out: string[] = [];
  for (const [k, v] of req.headers) out.push(k.toLowerCase(), v);
  return out;
}

/** Which of the virtual host's domains took the host (Envoy: exact, then the longest suffix and prefix wildcards, then '*'). */
function matchedDomain(domains: readonly string[], host: string): string {
  const h = host.toLowerCase();
  const lower = domains.map((d) => d.toLowerCase());
  if (lower.includes(h)) return h;
  const wild = lower.filter((d) => d !== '*' && ((d.startsWith('*') && h.endsWith(d.slice(1))) || (d.endsWith('*') && h.startsWith(d.slice(0, -1)))));
  wild.sort((a, b) => b.length - a.length);
  return wild[0] ?? '*';
}

function rawRouteConfig(
  name: string | undefined,
  hcm: HcmSpec,
  listener: Listener,
  chainIndex: number,
  routes: readonly RouteConfiguration[],
): RouteConfiguration | undefined {
  if (name !== undefined) return routes.find((r) => r.name === name);
  const f = listener.filter_chains?.[chainIndex]?.filters?.find((x) => x.typed_config?.['@type'] === HCM_TYPE)?.typed_config;
  return hcm.inlineRoutes ? (f as envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager | undefined)?.route_config : undefined;
}

function actionOf(compiled: CompiledRoute, raw: Route, req: TestedRequest, tls: boolean): RouteActionExplanation {
  if (compiled.action === ACTION_DIRECT) {
    return { kind: 'direct_response', status: compiled.directStatus, ...(compiled.directBody ? { body: compiled.directBody } : {}) };
  }
  if (compiled.action === ACTION_REDIRECT) {
    const r = compiled.redirect;
    const scheme = r?.scheme ?? (tls ? 'https' : 'http');
    const host = r?.host ?? req.authority;
    const port = r?.port !== undefined && r.port !== 0 ? `:${r.port}` : '';
    let path = req.path;
    if (r?.path !== undefined) path = r.path;
    else if (r?.prefixRewrite !== undefined && compiled.prefix !== undefined) path = r.prefixRewrite + req.path.slice(compiled.prefix.length);
    return { kind: 'redirect', status: r?.status ?? 301, location: `${scheme}://${host}${port}${path}` };
  }
  const a = raw.route ?? {};
  const out: RouteActionExplanation = { kind: 'route', timeoutMs: compiled.timeoutMs };
  if (compiled.prefixRewrite !== undefined) out.prefixRewrite = compiled.prefixRewrite;
  if (a.regex_rewrite) out.regexRewrite = `${a.regex_rewrite.pattern?.regex ?? ''} -> ${a.regex_rewrite.substitution ?? ''}`;
  if (compiled.hostRewrite !== undefined) out.hostRewrite = compiled.hostRewrite;
  if (compiled.retry) {
    const rawRetry = a.retry_policy ?? {};
    out.retries = { retryOn: rawRetry.retry_on ?? '', numRetries: compiled.retry.numRetries, perTryTimeoutMs: compiled.retry.perTryTimeoutMs };
  }
  if (compiled.fault) {
    const f = compiled.fault;
    out.fault = { delayMs: f.delayMs, delayPercent: f.delayProbability * 100, abortStatus: f.abortStatus, abortPercent: f.abortProbability * 100 };
  }
  if (compiled.mirrors) out.mirrors = compiled.mirrors.map((m) => ({ cluster: m.cluster, percent: m.probability * 100 }));
  if (compiled.cors) out.cors = true;
  if (compiled.clusterHeader !== undefined) out.clusterHeader = compiled.clusterHeader;
  return out;
}

function hostOf(address: string, port: number, health: string | undefined, ejected: boolean): Host {
  const h = new Host(address, port);
  h.health = HEALTH_BY_NAME[health ?? 'UNKNOWN'] ?? 0;
  h.outlierEjected = ejected;
  return h;
}

function socketAddress(a: envoy.config.core.v3.Address | undefined): { address: string; port: number } {
  const s = a?.socket_address;
  return { address: s?.address ?? a?.pipe?.path ?? '', port: s?.port_value ?? 0 };
}

function endpointsOf(cluster: Cluster, config: EnvoyConfig): EndpointExplanation[] {
  const status = config.clusterStatuses?.find((s) => s.name === cluster.name);
  if (status) {
    return (status.host_statuses ?? []).map((hs) => {
      const { address, port } = socketAddress(hs.address);
      const ejected = hs.health_status?.failed_outlier_check === true;
      const h = hostOf(address, port, hs.health_status?.eds_health_status, ejected);
      const active = Number(hs.stats?.find((s) => s.name === 'rq_active')?.value ?? 0);
      return {
        address: h.key,
        health: hs.health_status?.eds_health_status ?? 'HEALTHY',
        outlierEjected: ejected,
        usable: (h.healthy && !h.excluded) || h.degraded,
        weight: hs.weight ?? 1,
        priority: hs.priority ?? 0,
        activeRequests: active,
      };
    });
  }
  const serviceName = cluster.eds_cluster_config?.service_name || cluster.name;
  const cla = cluster.type === 'EDS' || cluster.type === undefined ? config.endpoints.find((e) => e.cluster_name === serviceName) : cluster.load_assignment;
  return (cla?.endpoints ?? []).flatMap((l) =>
    (l.lb_endpoints ?? []).map((e) => {
      const { address, port } = socketAddress(e.endpoint?.address);
      const h = hostOf(address, port, e.health_status, false);
      return {
        address: h.key,
        health: e.health_status ?? 'UNKNOWN',
        usable: (h.healthy && !h.excluded) || h.degraded,
        weight: e.load_balancing_weight ?? 1,
        priority: l.priority ?? 0,
      };
    }),
  );
}

/** Envoy's healthy_panic_threshold (default 50%; Istio sets 0, which never panics). */
function panicThreshold(c: Cluster): number {
  const t = c.common_lb_config?.healthy_panic_threshold;
  return t === undefined ? 50 : (t.value ?? 0);
}

function explainCluster(name: string, percent: number, config: EnvoyConfig): ClusterExplanation {
  const c = config.clusters.find((x) => x.name === name);
  if (!c) {
    return {
      name,
      percent,
      found: false,
      services: [],
      endpoints: [],
      panic: false,
      outcome: 'cluster_not_found',
      why: `the route names cluster ${name}, which the gateway does not have`,
    };
  }
  const endpoints = endpointsOf(c, config);
  const source = istioConfigRef(c.metadata);
  const subset = (c.metadata?.filter_metadata?.istio as { subset?: unknown } | undefined)?.subset;
  const t = c.circuit_breakers?.thresholds?.find((x) => (x.priority ?? 'DEFAULT') === 'DEFAULT');
  const live = config.clusterStatuses !== undefined;
  const out: ClusterExplanation = {
    name,
    percent,
    found: true,
    type: c.type ?? 'EDS',
    ...(source ? { source } : {}),
    services: istioServices(c.metadata),
    ...(typeof subset === 'string' ? { subset } : {}),
    endpoints,
    panic: false,
    outcome: 'forwarded',
  };
  if (t || live) {
    out.circuitBreakers = {
      // Envoy's defaults where a threshold is not set.
      maxConnections: t?.max_connections ?? 1024,
      maxPendingRequests: t?.max_pending_requests ?? 1024,
      maxRequests: t?.max_requests ?? 1024,
      maxRetries: t?.max_retries ?? 3,
      ...(live ? { activeRequests: endpoints.reduce((n, e) => n + (e.activeRequests ?? 0), 0) } : {}),
    };
  }
  const od = c.outlier_detection;
  if (od) {
    out.outlierDetection = {
      ...(od.consecutive_5xx !== undefined ? { consecutive5xx: od.consecutive_5xx } : {}),
      ...(od.interval !== undefined ? { interval: od.interval } : {}),
      ...(od.base_ejection_time !== undefined ? { baseEjectionTime: od.base_ejection_time } : {}),
      ...(od.max_ejection_percent !== undefined ? { maxEjectionPercent: od.max_ejection_percent } : {}),
      ...(live ? { ejected: endpoints.filter((e) => e.outlierEjected).length } : {}),
    };
  }
  // DNS clusters resolve when they are used: their endpoints are names, taken as usable.
  if (endpoints.some((e) => e.usable) || (c.type !== undefined && c.type !== 'EDS' && c.type !== 'STATIC' && !live)) return out;
  if (endpoints.length > 0 && panicThreshold(c) > 0) {
    out.panic = true;
    return out;
  }
  out.outcome = 'no_healthy_upstream';
  if (endpoints.length === 0) out.why = `cluster ${name} has no endpoints`;
  else {
    const states = endpoints.map((e) => `${e.address} ${e.outlierEjected ? 'ejected by outlier detection' : e.health}`).join(', ');
    out.why = `no endpoint of cluster ${name} is healthy: ${states}`;
  }
  return out;
}

/** istiod's RBAC policy names: ns[<namespace>]-policy[<name>]-rule[<index>]. */
function policyRef(policy: string | undefined): IstioRef | undefined {
  const m = /^ns\[([^\]]+)\]-policy\[([^\]]+)\]-rule\[\d+\]$/.exec(policy ?? '');
  return m ? { kind: 'AuthorizationPolicy', namespace: m[1] ?? '', name: m[2] ?? '' } : undefined;
}

/** The HTTP filters that can stop the request, each RBAC filter decided by the proxy's own engine. */
function filterSteps(filters: readonly HttpFilterSpec[], rbacReq: RbacRequest): PolicyStep[] {
  const out: PolicyStep[] = [];
  for (const f of filters) {
    if (f.kind === 'rbac') {
      if (!f.rbac.rules) continue; // dry-run (shadow) rules only: they never deny
      const d = decideHttpRbac(f.rbac, rbacReq);
      const policy = d.metadata?.[`${f.rbac.rulesStatPrefix}enforced_effective_policy_id`];
      const source = policyRef(policy);
      out.push({
        filter: 'rbac',
        result: d.allowed ? 'allowed' : 'denied',
        ...(policy !== undefined ? { policy } : {}),
        ...(source ? { source } : {}),
        ...(d.responseCodeDetails !== undefined ? { details: d.responseCodeDetails } : {}),
        note: `${f.rbac.rules.action} rules`,
      });
    } else if (f.kind === 'jwt') {
      out.push({
        filter: 'jwt_authn',
        result: 'not evaluated',
        note: 'RequestAuthentication: a request with an invalid JWT gets 401; one without a JWT passes this filter',
      });
    } else if (f.kind === 'ext_authz') {
      out.push({
        filter: 'ext_authz',
        result: 'not evaluated',
        note: `CUSTOM AuthorizationPolicy: the authorizer at cluster ${f.extAuthz.service.cluster} decides`,
      });
    }
  }
  return out;
}

function chainFilter(spec: FilterChainSpec): 'http_connection_manager' | 'tcp_proxy' {
  return spec.tcp ? 'tcp_proxy' : 'http_connection_manager';
}

/** Walks the request through the configuration. Throws ConfigError when a resource is one the proxy would reject. */
export function explain(config: EnvoyConfig, req: ExplainRequest): Explanation {
  const port = req.port ?? (req.tls ? 443 : 80);
  const sni = req.tls ? (req.sni ?? req.host.replace(/:\d+$/, '')).toLowerCase() : undefined;
  const out: Explanation = {
    request: { host: req.host, path: req.path, method: req.method, port, tls: req.tls, ...(sni !== undefined ? { sni } : {}) },
    skippedRoutes: [],
    clusters: [],
    details: '',
    outcome: 'no_listener',
    served: false,
  };
  const fail = (outcome: Outcome, status: number | undefined, details: string, why: string): Explanation =>
    Object.assign(out, { outcome, details, why, served: false }, status === undefined ? {} : { status });

  const picked = selectListener(config.listeners, config.routes, port);
  if (!picked) {
    const ports = config.listeners.map((l) => `${l.name ?? ''} (port ${listenerPort(l)})`).join(', ');
    return fail(
      'no_listener',
      undefined,
      '',
      `no listener on port ${port}: the connection is refused${ports ? `; the gateway listens with ${ports}` : ' (the gateway has no listener)'}`,
    );
  }
  const spec: ListenerSpec = parseListener(picked.listener);
  out.listener = { name: spec.name, address: spec.address, port: spec.port, ...(picked.gatewayPort !== undefined ? { gatewayPort: picked.gatewayPort } : {}) };

  // One plaintext HCM chain, or Envoy's filter chain match over several (SNI, transport protocol).
  let chain: FilterChainSpec | undefined;
  if (spec.chains) chain = new FilterChainMatcher(spec.chains.map((c) => ({ spec: c }))).select(sni, req.tls)?.spec;
  else if (!req.tls)
    chain = {
      index: 0,
      serverNames: [],
      transportProtocol: '',
      tls: undefined,
      hcm: spec.hcm,
      tcp: undefined,
      network: [],
      istioStats: undefined,
      handshakeTimeoutMs: 0,
    };
  if (!chain) {
    const names = (spec.chains ?? []).flatMap((c) => c.serverNames);
    const what = req.tls ? `TLS with SNI ${sni ?? '(none)'}` : 'plaintext';
    const offered = spec.chains
      ? names.length
        ? `its chains take SNI ${names.join(', ')}`
        : 'its chains take other connections'
      : 'it serves plaintext HTTP only';
    return fail(
      'no_filter_chain',
      undefined,
      'filter_chain_not_found',
      `no filter chain of listener ${spec.name} takes a ${what} connection (${offered}): the connection is closed`,
    );
  }
  out.filterChain = {
    index: chain.index,
    serverNames: chain.serverNames,
    transportProtocol: chain.transportProtocol,
    tls: chain.tls !== undefined,
    filter: chainFilter(chain),
  };

  if (chain.tcp) {
    // tcp_proxy: the weighted clusters of the chain, no HTTP routing.
    const total = chain.tcp.clusters.reduce((n, c) => n + c.weight, 0) || 1;
    out.clusters = chain.tcp.clusters.map((c) => explainCluster(c.name, (c.weight * 100) / total, config));
    return settle(out);
  }
  const hcm = chain.hcm as HcmSpec;
  const rawRc = rawRouteConfig(hcm.rdsName, hcm, picked.listener, chain.index, config.routes);
  out.routeConfiguration = hcm.rdsName ?? rawRc?.name ?? '';
  if (!rawRc)
    return fail(
      'no_route_configuration',
      404,
      'route_not_found',
      `listener ${spec.name} uses route configuration ${hcm.rdsName ?? ''}, which the gateway has not received`,
    );
  const rc: CompiledRouteConfig = compileRouteConfig(rawRc);

  const path = hcm.normalizePath || hcm.mergeSlashes ? normalizePath(req.path, hcm.mergeSlashes) : req.path;
  if (path === undefined) return fail('path_rejected', 400, 'path_normalization_failed', `path ${req.path} cannot be normalized: 400`);
  const q = path.indexOf('?');
  const headers = flatHeaders(req);
  const tested: TestedRequest = {
    method: req.method,
    authority: req.host,
    path,
    pathNoQuery: q < 0 ? path : path.slice(0, q),
    scheme: req.tls ? 'https' : 'http',
    headers,
  };

  const policies = filterSteps(hcm.filters, {
    method: req.method,
    authority: req.host,
    path,
    scheme: tested.scheme,
    headers,
    directRemoteIp: req.client ?? DEFAULT_CLIENT,
    remoteIp: req.client ?? DEFAULT_CLIENT,
    destinationIp: spec.address,
    destinationPort: spec.port,
    sni,
    peerCertificate: undefined,
    tls: req.tls,
    metadata: () => undefined,
  });
  if (policies.length > 0) out.policies = policies;
  const routed = explainRoute(out, config, req, { rc, rawRc, tested, fail });
  // The HTTP filters run before the router: a request a filter denies gets its reply, route or no route.
  const denied = policies.find((p) => p.result === 'denied');
  if (!denied) return routed;
  const by = denied.source ? ` AuthorizationPolicy ${denied.source.namespace}/${denied.source.name}` : ' an AuthorizationPolicy';
  const what = denied.policy === undefined ? 'no ALLOW policy matches it' : `${by.trim()} matches it`;
  return Object.assign(routed, {
    outcome: 'rbac_denied',
    status: 403,
    details: denied.details ?? '',
    served: false,
    why: `the RBAC filter denies the request: ${what}`,
  });
}

interface RouteStep {
  rc: CompiledRouteConfig;
  rawRc: RouteConfiguration;
  tested: TestedRequest;
  fail: (outcome: Outcome, status: number | undefined, details: string, why: string) => Explanation;
}

/** The virtual host, route and clusters of an HTTP request. */
function explainRoute(out: Explanation, config: EnvoyConfig, req: ExplainRequest, step: RouteStep): Explanation {
  const { rc, rawRc, tested, fail } = step;
  const { path, headers } = tested;
  const vhost = findVirtualHost(rc, req.host.toLowerCase());
  if (!vhost) {
    const domains = (rawRc.virtual_hosts ?? []).flatMap((v) => v.domains ?? []);
    return fail(
      'no_virtual_host',
      404,
      'route_not_found',
      `no virtual host of route configuration ${rc.name} takes host ${req.host} (its domains: ${domains.join(', ') || 'none'})`,
    );
  }
  const vIndex = rc.virtualHosts.indexOf(vhost);
  const rawVhost = rawRc.virtual_hosts?.[vIndex] ?? {};
  out.virtualHost = {
    name: vhost.name,
    domains: rawVhost.domains ?? [],
    matchedDomain: matchedDomain(rawVhost.domains ?? [], rc.ignorePortInHostMatching ? stripPort(req.host) : req.host),
  };
  if (vhost.requireTls !== REQUIRE_TLS_NONE && !req.tls) {
    Object.assign(out, { outcome: 'redirect', status: 301, details: '', served: true });
    out.why = `virtual host ${vhost.name} requires TLS: a plaintext request is redirected to https://${req.host}${path}`;
    return out;
  }
  const grpc = isGrpcContentType(headers[headers.indexOf('content-type') + 1] ?? undefined);
  const matchReq = { method: req.method, authority: req.host, path, scheme: tested.scheme, headers };
  const chosen = matchRoute(vhost, matchReq, tested.pathNoQuery, grpc);
  const chosenIndex = chosen ? vhost.routes.indexOf(chosen) : vhost.routes.length;
  for (let i = 0; i < chosenIndex; i++) {
    const r = vhost.routes[i] as CompiledRoute;
    const raw = rawVhost.routes?.[i] ?? {};
    const mismatch = routeMismatch(r, matchReq, tested.pathNoQuery, grpc);
    const source = istioConfigRef(raw.metadata);
    out.skippedRoutes.push({
      index: i,
      name: r.name,
      match: describeMatch(raw.match),
      // The index and the scan agree (route-index.ts), so a skipped route always has a mismatch.
      reason: mismatch ? describeMismatch(raw.match, mismatch, tested) : 'matches, but a route before it was taken',
      ...(source ? { source } : {}),
    });
  }
  if (!chosen) {
    const sources = [...new Set(out.skippedRoutes.flatMap((s) => (s.source ? [`${s.source.kind} ${s.source.namespace}/${s.source.name}`] : [])))];
    const why =
      vhost.routes.length === 0
        ? `virtual host ${vhost.name} has no routes`
        : `no route of virtual host ${vhost.name} matches ${req.method} ${tested.pathNoQuery}: its routes match ${out.skippedRoutes.map((s) => s.match).join('; ')}${sources.length ? ` (from ${sources.join(', ')})` : ''}`;
    return fail('no_route', 404, 'route_not_found', why);
  }
  const raw = rawVhost.routes?.[chosenIndex] ?? {};
  const source = istioConfigRef(raw.metadata);
  const action = actionOf(chosen, raw, tested, req.tls);
  out.route = { index: chosenIndex, name: chosen.name, match: describeMatch(raw.match), ...(source ? { source } : {}), action };
  if (action.kind !== 'route') {
    Object.assign(out, { outcome: action.kind, status: action.status, details: 'direct_response', served: true });
    return out;
  }
  if (chosen.weighted) {
    out.clusters = chosen.weighted.map((w) => explainCluster(w.name, (w.weight * 100) / chosen.totalWeight, config));
  } else if (chosen.cluster !== undefined) out.clusters = [explainCluster(chosen.cluster, 100, config)];
  else {
    // cluster_header: the cluster is the request's header value.
    const name = headers[headers.indexOf(chosen.clusterHeader ?? '') + 1];
    out.clusters = [explainCluster(headers.includes(chosen.clusterHeader ?? '') ? (name ?? '') : '', 100, config)];
  }
  for (const c of out.clusters) if (c.outcome === 'cluster_not_found') c.why = `${c.why ?? ''}: ${chosen.clusterNotFoundStatus} cluster_not_found`;
  return settle(out, chosen.clusterNotFoundStatus);
}

/** The outcome from the clusters: forwarded when each share of the traffic reaches a usable endpoint, else the first failure. */
function settle(out: Explanation, notFoundStatus = 503): Explanation {
  const failed = out.clusters.find((c) => c.outcome !== 'forwarded');
  if (!failed) return Object.assign(out, { outcome: 'forwarded', details: 'via_upstream', served: true });
  const share = failed.percent < 100 ? `${Math.round(failed.percent * 100) / 100}% of requests: ` : '';
  const status = failed.outcome === 'cluster_not_found' ? notFoundStatus : 503;
  return Object.assign(out, { outcome: failed.outcome, status, details: failed.outcome, served: false, why: `${share}${failed.why ?? ''}` });
}
