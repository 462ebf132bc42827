// explain on the translation goldens (controller/translate/testdata/*.in.yaml, translated and passed through the
// Envoy protos as the proxy receives them): for a set of requests per golden, the listener, chain, route and
// cluster chosen, why earlier routes did not match, and the 404/503 sentences; then, for every golden, that the
// reasons given for skipped routes are real mismatches and the route chosen is the data plane's linear scan's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { ObjectStore } from '../../controller/model/store.ts';
import { isKind, type KubeObject } from '../../controller/model/objects.ts';
import { DEFAULT_MESH_CONFIG, parseMeshConfig, type MeshConfig } from '../../controller/model/mesh-config.ts';
import type { GatewayIdentity } from '../../controller/xds/snapshot.ts';
import { translate } from '../../controller/translate/translate.ts';
import { normalizeJson } from '../../xds/protos.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../xds/type-urls.ts';
import type { envoy } from '../../xds/envoy.ts';
import { compileRouteConfig, matchRouteLinear } from '../router/route-config.ts';
import { explain, type EnvoyConfig, type ExplainRequest, type Explanation } from './explain.ts';
import { configFromAdmin } from './config-dump.ts';
import { renderExplanation } from './render.ts';
import { annotateWithIstio } from '../../cli/commands/explain-istio.ts';

const DIR = join(import.meta.dirname, '../../controller/translate/testdata');

interface Golden {
  config: EnvoyConfig;
  store: ObjectStore;
  identity: GatewayIdentity;
}

function fromYaml(text: string, file: string): Golden {
  let identity: GatewayIdentity = { namespace: 'istio-system', podName: 'istio-ingressgateway-0', labels: { istio: 'ingressgateway' } };
  let mesh: MeshConfig = DEFAULT_MESH_CONFIG;
  const store = new ObjectStore();
  parseAllDocuments(text).forEach((d, i) => {
    const o = d.toJS() as (KubeObject & { identity?: GatewayIdentity; mesh?: unknown }) | null;
    if (!o) return;
    if (o.kind === 'Identity' && o.identity) identity = o.identity;
    else if (o.kind === 'MeshConfig') {
      const parsed = parseMeshConfig(typeof o.mesh === 'string' ? o.mesh : stringify(o.mesh ?? {}), file);
      if (parsed.ok) mesh = parsed.mesh;
    } else if (isKind(o.kind)) {
      o.metadata.namespace ??= 'default';
      store.upsert(o.kind, o, { file: `${file}#${i}` });
    }
  });
  const r = translate(store.snapshot(), identity, undefined, mesh).resources;
  const config: EnvoyConfig = {
    listeners: r.listeners.map((l) => normalizeJson(LISTENER_TYPE, l) as envoy.config.listener.v3.Listener),
    routes: r.routes.map((x) => normalizeJson(ROUTE_TYPE, x) as envoy.config.route.v3.RouteConfiguration),
    clusters: r.clusters.map((c) => normalizeJson(CLUSTER_TYPE, c) as envoy.config.cluster.v3.Cluster),
    endpoints: r.endpoints.map((e) => normalizeJson(ENDPOINT_TYPE, e) as envoy.config.endpoint.v3.ClusterLoadAssignment),
  };
  return { config, store, identity };
}

const cache = new Map<string, Golden>();
function golden(name: string): Golden {
  let g = cache.get(name);
  if (!g) cache.set(name, (g = fromYaml(readFileSync(join(DIR, `${name}.in.yaml`), 'utf8'), `${name}.in.yaml`)));
  return g;
}

const req = (host: string, path: string, more: Partial<ExplainRequest> = {}): ExplainRequest => ({
  host,
  path,
  method: 'GET',
  headers: [],
  tls: false,
  ...more,
});

/** explain, then the offline Istio sentences, as `meshgate explain --config` does. */
function offline(name: string, r: ExplainRequest): Explanation {
  const g = golden(name);
  return annotateWithIstio(explain(g.config, r), g.config, g.store.snapshot(), g.identity);
}

const HTTPBIN = 'outbound|8000||httpbin.default.svc.cluster.local';
const HTTPBIN_V3 = 'outbound|8000|test-version|httpbin.default.svc.cluster.local';

test('walkthrough /status/200: Gateway port 80 finds listener 0.0.0.0_8080, route #0 of VirtualService default/httpbin, both ready endpoints', () => {
  const x = explain(golden('httpbin-ingress').config, req('httpbin.example.com', '/status/200'));
  assert.deepEqual(x.listener, { name: '0.0.0.0_8080', address: '0.0.0.0', port: 8080, gatewayPort: 80 });
  assert.equal(x.filterChain?.filter, 'http_connection_manager');
  assert.equal(x.routeConfiguration, 'http.8080');
  assert.deepEqual(x.virtualHost, { name: 'httpbin.example.com:80', domains: ['httpbin.example.com'], matchedDomain: 'httpbin.example.com' });
  assert.deepEqual(x.skippedRoutes, []);
  assert.equal(x.route?.index, 0);
  assert.deepEqual(x.route?.source, { kind: 'VirtualService', namespace: 'default', name: 'httpbin' });
  assert.equal(x.route?.action.timeoutMs, 0);
  assert.equal(x.route?.action.retries?.numRetries, 2);
  assert.equal(x.clusters.length, 1);
  const c = x.clusters[0];
  assert.equal(c?.name, HTTPBIN);
  assert.deepEqual(
    c?.endpoints.map((e) => [e.address, e.health, e.usable]),
    [
      ['10.244.0.11:8080', 'HEALTHY', true],
      ['10.244.0.13:8080', 'HEALTHY', true],
    ],
  );
  assert.deepEqual(c?.services, [{ kind: 'Service', namespace: 'default', name: 'httpbin' }]);
  assert.equal(x.outcome, 'forwarded');
  assert.equal(x.served, true);
  assert.equal(x.status, undefined);
  // The listener's own port finds the same listener, without a Gateway port.
  assert.equal(explain(golden('httpbin-ingress').config, req('httpbin.example.com', '/status/200', { port: 8080 })).listener?.gatewayPort, undefined);
});

test('walkthrough /delay/1: route #1, route #0 skipped because of its path prefix', () => {
  const x = explain(golden('httpbin-ingress').config, req('httpbin.example.com', '/delay/1'));
  assert.equal(x.route?.index, 1);
  assert.deepEqual(
    x.skippedRoutes.map((s) => [s.index, s.reason]),
    [[0, 'path /delay/1 does not match path prefix /status']],
  );
});

test('walkthrough /anything: 503 because subset test-version selects no ready pod (offline names the labels)', () => {
  const live = explain(golden('httpbin-ingress').config, req('httpbin.example.com', '/anything'));
  assert.equal(live.route?.index, 2);
  assert.deepEqual(live.route?.source, { kind: 'VirtualService', namespace: 'default', name: 'httpbin-anything' });
  assert.equal(live.clusters[0]?.name, HTTPBIN_V3);
  assert.equal(live.clusters[0]?.subset, 'test-version');
  assert.deepEqual(live.clusters[0]?.source, { kind: 'DestinationRule', namespace: 'default', name: 'httpbin' });
  assert.equal(live.status, 503);
  assert.equal(live.outcome, 'no_healthy_upstream');
  assert.equal(live.why, `cluster ${HTTPBIN_V3} has no endpoints`);
  const off = offline('httpbin-ingress', req('httpbin.example.com', '/anything'));
  assert.equal(off.why, 'subset test-version selects no ready pod: it needs version=v3, pods with app=httpbin have version v1');
  assert.equal(off.clusters[0]?.source?.file, 'httpbin-ingress.in.yaml#7');
});

test('walkthrough /other: 404, every route skipped with its path', () => {
  const x = explain(golden('httpbin-ingress').config, req('httpbin.example.com', '/other'));
  assert.equal(x.status, 404);
  assert.equal(x.details, 'route_not_found');
  assert.equal(x.route, undefined);
  assert.deepEqual(
    x.skippedRoutes.map((s) => s.reason),
    ['path /other does not match path prefix /status', 'path /other does not match path prefix /delay', 'path /other does not match path prefix /anything'],
  );
  assert.equal(
    x.why,
    'no route of virtual host httpbin.example.com:80 matches GET /other: its routes match path prefix /status; path prefix /delay; path prefix /anything (from VirtualService default/httpbin, VirtualService default/httpbin-anything)',
  );
});

test('walkthrough unknown host: 404, no virtual host; offline: no Gateway server on port 80 takes it', () => {
  const live = explain(golden('httpbin-ingress').config, req('unknown.example.com', '/status/200'));
  assert.equal(live.outcome, 'no_virtual_host');
  assert.equal(live.status, 404);
  assert.equal(live.why, 'no virtual host of route configuration http.8080 takes host unknown.example.com (its domains: httpbin.example.com)');
  const off = offline('httpbin-ingress', req('unknown.example.com', '/status/200'));
  assert.equal(off.why, 'no Gateway server on port 80 takes host unknown.example.com: Gateway default/httpbin-gateway takes httpbin.example.com');
});

test('a Gateway without VirtualService: istiod’s blackhole virtual host, 404 "no VirtualService binds host X to Gateway Y on port 80"', () => {
  const live = explain(golden('no-virtualservice').config, req('foo.bar', '/'));
  assert.equal(live.virtualHost?.name, 'blackhole:80');
  assert.equal(live.outcome, 'no_route');
  assert.equal(live.why, 'virtual host blackhole:80 has no routes');
  const off = offline('no-virtualservice', req('foo.bar', '/'));
  assert.equal(off.why, 'no VirtualService binds host foo.bar to Gateway default/default on port 80 (no-virtualservice.in.yaml#1)');
});

test('no listener on the port, and a TLS connection to a plaintext listener', () => {
  const none = explain(golden('httpbin-ingress').config, req('httpbin.example.com', '/', { port: 9999 }));
  assert.equal(none.outcome, 'no_listener');
  assert.equal(none.served, false);
  assert.equal(none.why, 'no listener on port 9999: the connection is refused; the gateway listens with 0.0.0.0_8080 (port 8080)');
  const tls = explain(golden('httpbin-ingress').config, req('httpbin.example.com', '/', { port: 8080, tls: true }));
  assert.equal(tls.outcome, 'no_filter_chain');
  assert.match(
    tls.why ?? '',
    /no filter chain of listener 0\.0\.0\.0_8080 takes a TLS with SNI httpbin\.example\.com connection \(it serves plaintext HTTP only\)/,
  );
});

const SHOP = 'shop.example.com';

test('header conditions: the first failing condition of each skipped route, :scheme included', () => {
  const g = golden('header-match-catch-all').config;
  const headers: [string, string][] = [
    ['end-user', 'jason'],
    ['x-present', '1'],
  ];
  const x = explain(g, req(SHOP, '/reviews/12?v=1&debug', { headers }));
  assert.equal(x.skippedRoutes[0]?.name, 'jason.by-header');
  assert.equal(x.skippedRoutes[0]?.reason, "header :scheme: 'http' does not match :scheme exact 'https'");
  // /reviews/12 is under the prefix /r of the next routable route.
  assert.equal(x.route?.name, 'regex-rewrite');
  assert.equal(x.route?.action.regexRewrite, '^/r/(.*)$ -> /\\1');
  assert.equal(x.clusters[0]?.name, 'outbound|9080||reviews.default.svc.cluster.local');
  const bob = explain(g, req(SHOP, '/reviews/12', { headers: [['end-user', 'bob']] }));
  assert.equal(bob.skippedRoutes[0]?.reason, "header end-user: 'bob' does not match end-user exact 'jason'");
  const absent = explain(g, req(SHOP, '/reviews/12'));
  assert.equal(absent.skippedRoutes[0]?.reason, "header end-user is absent, the route needs end-user exact 'jason'");
  const post = explain(g, req(SHOP, '/reviews/12', { method: 'POST', headers: [...headers, ['x-debug', '0']] }));
  assert.equal(post.skippedRoutes[0]?.reason, "method POST does not match :method exact 'GET'");
  assert.equal(describeSkipped(post), 'jason.by-header,rewrite');
  assert.equal(explain(g, req(SHOP, '/nothing-else')).route?.name, 'default');
});

function describeSkipped(x: Explanation): string {
  return x.skippedRoutes.map((s) => s.name).join(',');
}

test('actions: rewrite, redirect, direct response', () => {
  const g = golden('header-match-catch-all').config;
  const rewrite = explain(g, req(SHOP, '/old/x'));
  assert.equal(rewrite.route?.name, 'rewrite');
  assert.equal(rewrite.route?.action.prefixRewrite, '/new');
  assert.equal(rewrite.route?.action.hostRewrite, 'new.example.com');
  const moved = explain(g, req(SHOP, '/moved'));
  assert.equal(moved.outcome, 'redirect');
  assert.equal(moved.status, 302);
  assert.equal(moved.served, true);
  assert.match(moved.route?.action.location ?? '', /^http:\/\/other\.example\.com.*\/new-place$/);
  const teapot = explain(g, req(SHOP, '/teapot'));
  assert.equal(teapot.outcome, 'direct_response');
  assert.equal(teapot.status, 418);
  assert.equal(teapot.route?.action.body, "I'm a teapot");
});

test('weighted clusters: each with its share; a zero-weight destination is not there', () => {
  const x = explain(golden('subset-and-weights').config, req('reviews.example.com', '/'));
  assert.deepEqual(
    x.clusters.map((c) => [c.name, c.percent, c.outcome]),
    [
      ['outbound|9080|v1|reviews.default.svc.cluster.local', 50, 'forwarded'],
      ['outbound|9080|v3|reviews.default.svc.cluster.local', 50, 'forwarded'],
    ],
  );
  assert.equal(x.served, true);
  assert.match(renderExplanation(x), /cluster {9}outbound\|9080\|v1\|reviews\.default\.svc\.cluster\.local \(50% of requests\)/);
});

test('TLS: the SNI picks the filter chain and its routes; an unknown SNI closes the connection', () => {
  const g = golden('tls-ingress-sni-hosts').config;
  const names = g.listeners[0]?.filter_chains?.map((fc) => fc.filter_chain_match?.server_names?.[0] ?? '') ?? [];
  const host = names[1] ?? '';
  const x = explain(g, req(host, '/', { tls: true }));
  assert.equal(x.listener?.name, '0.0.0.0_8443');
  assert.equal(x.listener?.gatewayPort, 443);
  assert.equal(x.filterChain?.index, 1);
  assert.equal(x.filterChain?.tls, true);
  assert.equal(x.routeConfiguration, 'https.443.https-helloworld.mygateway.default');
  const unknown = explain(g, req('nope.example.com', '/', { tls: true }));
  assert.equal(unknown.outcome, 'no_filter_chain');
  assert.match(unknown.why ?? '', /takes a TLS with SNI nope\.example\.com connection/);
});

test('TLS passthrough: tcp_proxy chain and its cluster, by the listener port', () => {
  const x = explain(golden('tls-ingress-passthrough').config, req('nginx.example.com', '/', { tls: true, port: 8443 }));
  assert.equal(x.filterChain?.filter, 'tcp_proxy');
  assert.equal(x.route, undefined);
  assert.equal(x.clusters[0]?.name, 'outbound|443||my-nginx.default.svc.cluster.local');
});

const POLICY = `
kind: Identity
identity: {namespace: istio-system, podName: gw-0, labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*.example.com"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: policy, namespace: default}
spec:
  hosts: ["*.example.com"]
  gateways: [gw]
  http:
  - name: by-query
    match: [{queryParams: {v: {exact: "2"}}}]
    route: [{destination: {host: api}}]
  - name: faulty
    route: [{destination: {host: api}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 10}}}
    mirror: {host: api}
    mirrorPercentage: {value: 50}
    corsPolicy: {allowOrigins: [{exact: "https://a.example.com"}]}
    timeout: 3s
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api
  trafficPolicy:
    connectionPool: {http: {http1MaxPendingRequests: 7, maxRequestsPerConnection: 1}, tcp: {maxConnections: 9}}
    outlierDetection: {consecutive5xxErrors: 3, interval: 10s, baseEjectionTime: 30s}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec: {selector: {app: api}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: default, labels: {app: api}}
status: {podIP: 10.0.0.5, conditions: [{type: Ready, status: "False"}]}
`;

test('query parameters, fault, mirror, CORS, timeout, circuit breakers and outlier detection; no ready pod is said offline', () => {
  const g = fromYaml(POLICY, 'policy.yaml');
  const x = explain(g.config, req('a.example.com', '/x?v=1'));
  assert.equal(x.virtualHost?.matchedDomain, '*.example.com');
  assert.equal(x.skippedRoutes[0]?.reason, "query parameter v='1' does not match exact '2'");
  const a = x.route?.action;
  assert.deepEqual(a?.fault, { delayMs: 0, delayPercent: 0, abortStatus: 503, abortPercent: 10 });
  assert.deepEqual(a?.mirrors, [{ cluster: 'outbound|80||api.default.svc.cluster.local', percent: 50 }]);
  assert.equal(a?.cors, true);
  assert.equal(a?.timeoutMs, 3000);
  const c = x.clusters[0];
  assert.equal(c?.circuitBreakers?.maxConnections, 9);
  assert.equal(c?.circuitBreakers?.maxPendingRequests, 7);
  assert.equal(c?.outlierDetection?.consecutive5xx, 3);
  assert.equal(x.outcome, 'no_healthy_upstream');
  const off = annotateWithIstio(x, g.config, g.store.snapshot(), g.identity);
  assert.equal(off.why, 'no ready pod behind Service default/api: api-0 not ready');
  const absent = explain(g.config, req('a.example.com', '/x'));
  assert.equal(absent.skippedRoutes[0]?.reason, "query parameter v is absent, the route needs it exact '2'");
  const text = renderExplanation(off);
  for (const line of [
    'fault:         abort 503 for 10%',
    'mirror:        50% to outbound|80||api.default.svc.cluster.local',
    'policy:        timeout 3s',
    'outlier:       3 consecutive 5xx',
  ])
    assert.ok(text.includes(line), `${line} in\n${text}`);
});

test('live: endpoint health and outlier ejection come from /clusters, the resources from /config_dump', () => {
  const g = golden('httpbin-ingress').config;
  const dump = {
    configs: [
      { '@type': 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump', dynamic_active_clusters: g.clusters.map((c) => ({ cluster: c })) },
      { '@type': 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump', dynamic_endpoint_configs: g.endpoints.map((e) => ({ endpoint_config: e })) },
      {
        '@type': 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump',
        dynamic_listeners: g.listeners.map((l) => ({ name: l.name, active_state: { listener: l } })),
      },
      { '@type': 'type.googleapis.com/envoy.admin.v3.RoutesConfigDump', dynamic_route_configs: g.routes.map((r) => ({ route_config: r })) },
    ],
  };
  const clusters = {
    cluster_statuses: [
      {
        name: HTTPBIN,
        host_statuses: [
          {
            address: { socket_address: { address: '10.244.0.11', port_value: 8080 } },
            health_status: { failed_outlier_check: true, eds_health_status: 'HEALTHY' },
            stats: [{ name: 'rq_active', type: 'GAUGE', value: '2' }],
          },
          { address: { socket_address: { address: '10.244.0.13', port_value: 8080 } }, health_status: { eds_health_status: 'UNHEALTHY' } },
        ],
      },
    ],
  };
  const x = explain(configFromAdmin(dump, clusters), req('httpbin.example.com', '/status/200'));
  assert.deepEqual(
    x.clusters[0]?.endpoints.map((e) => [e.address, e.outlierEjected, e.usable]),
    [
      ['10.244.0.11:8080', true, false],
      ['10.244.0.13:8080', false, false],
    ],
  );
  assert.equal(x.clusters[0]?.circuitBreakers?.activeRequests, 2);
  assert.equal(x.status, 503);
  assert.equal(x.why, `no endpoint of cluster ${HTTPBIN} is healthy: 10.244.0.11:8080 ejected by outlier detection, 10.244.0.13:8080 UNHEALTHY`);
});

/** A request the route's own path condition takes: its prefix or path, a regex route skipped. */
function pathFor(m: envoy.config.route.v3.RouteMatch | undefined): string | undefined {
  if (m?.prefix !== undefined) return m.prefix.startsWith('/') ? `${m.prefix}x` : `/${m.prefix}`;
  if (m?.path !== undefined) return m.path;
  if (m?.path_separated_prefix !== undefined) return `${m.path_separated_prefix}/x`;
  return undefined;
}

const goldens = readdirSync(DIR)
  .filter((f) => f.endsWith('.in.yaml'))
  .map((f) => f.slice(0, -'.in.yaml'.length))
  .sort();

test('every golden: for a request at each route’s path, explain takes the route the linear scan takes and gives a real mismatch for each skipped one', () => {
  let checked = 0;
  const rejected: string[] = [];
  for (const name of goldens) {
    const { config } = golden(name);
    try {
      config.routes.forEach((rc) => compileRouteConfig(rc));
    } catch {
      rejected.push(name);
      continue;
    }
    for (const l of config.listeners) {
      const port = l.address?.socket_address?.port_value ?? 0;
      for (const rc of config.routes) {
        if (!(l.filter_chains ?? []).some((fc) => JSON.stringify(fc).includes(`"route_config_name":"${rc.name ?? ''}"`))) continue;
        const tls = (l.filter_chains ?? []).some((fc) => fc.transport_socket !== undefined);
        const compiled = compileRouteConfig(rc);
        for (const [vi, v] of (rc.virtual_hosts ?? []).entries()) {
          const domain = (v.domains ?? []).find((d) => !d.includes('*') && !d.includes(':')) ?? (v.domains?.[0] ?? '').replace('*', 'w');
          for (const route of v.routes ?? []) {
            const path = pathFor(route.match);
            if (path === undefined) continue;
            const x = explain(config, req(domain, path, { port, tls }));
            // Another chain or virtual host took it (SNI, the same domain in another route configuration), or require_tls redirects.
            if (x.virtualHost?.name !== v.name || (x.outcome === 'redirect' && x.route === undefined)) continue;
            const vhost = compiled.virtualHosts[vi];
            assert.ok(vhost, `${name}: virtual host ${v.name ?? ''}`);
            const want = matchRouteLinear(vhost, { method: 'GET', authority: domain, path, scheme: tls ? 'https' : 'http', headers: [] }, path, false);
            assert.equal(x.route?.index, want ? vhost.routes.indexOf(want) : undefined, `${name}: ${domain}${path}`);
            for (const s of x.skippedRoutes) assert.doesNotMatch(s.reason, /a route before it was taken/, `${name}: ${domain}${path}`);
            checked++;
          }
        }
      }
    }
  }
  assert.ok(checked > 100, `only ${checked} requests checked`);
  // An empty claim match (`"@request.auth.claims.role": {}`) becomes istiod's `string_match: {}`, a StringMatcher with
  // no pattern, which Envoy's validation refuses (match_pattern is required) as the proxy does: explain says so as a
  // configuration error rather than guess.
  assert.deepEqual(rejected, ['authn-claim-routes']);
});

const AUTHZ = `
kind: Identity
identity: {namespace: istio-system, podName: gw-0, labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [app.example.com]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [app.example.com]
  gateways: [gw]
  http: [{route: [{destination: {host: app}}]}]
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{to: [{operation: {paths: [/admin*]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: office, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: ALLOW
  rules: [{from: [{source: {remoteIpBlocks: [192.0.2.0/24]}}]}]
`;

test('AuthorizationPolicy: the proxy’s RBAC engine decides, before the route: a DENY match and no ALLOW match are 403 with the policy named', () => {
  const g = fromYaml(AUTHZ, 'authz.yaml');
  const admin = explain(g.config, req('app.example.com', '/admin/x', { client: '192.0.2.7' }));
  assert.equal(admin.outcome, 'rbac_denied');
  assert.equal(admin.status, 403);
  assert.equal(admin.details, 'rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-admin]-rule[0]]');
  assert.equal(admin.why, 'the RBAC filter denies the request: AuthorizationPolicy istio-system/deny-admin matches it');
  assert.deepEqual(admin.policies?.[0]?.source, { kind: 'AuthorizationPolicy', namespace: 'istio-system', name: 'deny-admin' });
  assert.equal(admin.route?.index, 0, 'the route is still resolved');
  const outside = explain(g.config, req('app.example.com', '/x', { client: '198.51.100.1' }));
  assert.equal(outside.outcome, 'rbac_denied');
  assert.equal(outside.why, 'the RBAC filter denies the request: no ALLOW policy matches it');
  const office = explain(g.config, req('app.example.com', '/x', { client: '192.0.2.7' }));
  assert.deepEqual(
    office.policies?.map((p) => [p.filter, p.result, p.source?.name]),
    [
      ['rbac', 'allowed', undefined],
      ['rbac', 'allowed', 'office'],
    ],
  );
  assert.notEqual(office.outcome, 'rbac_denied');
  const offline = annotateWithIstio(admin, g.config, g.store.snapshot(), g.identity);
  assert.match(renderExplanation(offline), /^filter {10}rbac \(DENY rules\): denied by AuthorizationPolicy istio-system\/deny-admin \(authz\.yaml#4\)$/m);
});

test('require_tls: a plaintext request to a virtual host that requires TLS is redirected to https, before any route', () => {
  const x = explain(golden('vhost-collapse-require-tls').config, req('anything.org', '/p?q=1', { port: 443 }));
  assert.equal(x.virtualHost?.name, '*:443');
  assert.equal(x.outcome, 'redirect');
  assert.equal(x.status, 301);
  assert.equal(x.route, undefined);
  assert.equal(x.why, 'virtual host *:443 requires TLS: a plaintext request is redirected to https://anything.org/p?q=1');
});

test('a Host with a port: istiod’s ignore_port_in_host_matching takes the same virtual host', () => {
  const x = explain(golden('httpbin-ingress').config, req('httpbin.example.com:80', '/status/200'));
  assert.deepEqual(x.virtualHost, { name: 'httpbin.example.com:80', domains: ['httpbin.example.com'], matchedDomain: 'httpbin.example.com' });
  assert.equal(x.served, true);
});
