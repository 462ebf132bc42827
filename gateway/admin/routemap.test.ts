// The route map's graph from a config_dump-like input: nodes per listener, filter chain, virtual host, route,
// cluster and endpoint, the edges between them (weights, mirrors, TCP proxies), counters read under Envoy's
// stat names (alt_stat_name for clusters), health as /clusters reports it, explain command lines quoted for a
// shell, and /config_dump queries that select each node's own fragment when run through the admin's renderer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { envoy } from '../../xds/envoy.ts';
import { compileRe2, isRe2Error } from '../../xds/re2.ts';
import { HCM_TYPE, TCP_PROXY_TYPE } from '../../xds/type-urls.ts';
import type { Json } from '../xds/json.ts';
import { COUNTER } from '../stats/store.ts';
import type { AdminContext } from './admin-server.ts';
import { renderConfigDump, T } from './config-dump.ts';
import { routeMapReply } from './routemap-page.ts';
import { buildRouteMap, re2Literal, shellWord, type RouteMap } from './routemap.ts';

const HTTPBIN = 'outbound|8000||httpbin.default.svc.cluster.local';
const V1 = 'outbound|8000|v1|httpbin.default.svc.cluster.local';
const V2 = 'outbound|8000|v2|httpbin.default.svc.cluster.local';
const PASS = 'outbound|443||pass.default.svc.cluster.local';
const MISSING = 'outbound|80||missing.default.svc.cluster.local';
const UNUSED = 'outbound|15021||istio-ingressgateway.istio-system.svc.cluster.local';
const MIRROR = 'outbound|8000||shadow.default.svc.cluster.local';

const addr = (port: number) => ({ socket_address: { address: '0.0.0.0', port_value: port } });
const hcm = (statPrefix: string, rds: string) => ({
  name: 'envoy.filters.network.http_connection_manager',
  typed_config: { '@type': HCM_TYPE, stat_prefix: statPrefix, rds: { config_source: { ads: {} }, route_config_name: rds } },
});

function configs(): Json[] {
  return [
    { '@type': T.bootstrap, bootstrap: {} },
    {
      '@type': T.clusters,
      static_clusters: [{ cluster: { name: 'prometheus_stats', type: 'STATIC' } }],
      dynamic_active_clusters: [HTTPBIN, V1, V2, PASS, UNUSED, MIRROR].map((name) => ({
        cluster: { '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', name, type: 'EDS', alt_stat_name: `${name};`, lb_policy: 'LEAST_REQUEST' },
      })),
    },
    {
      '@type': T.endpoints,
      dynamic_endpoint_configs: [{ endpoint_config: { cluster_name: HTTPBIN, endpoints: [] } }],
    },
    {
      '@type': T.listeners,
      static_listeners: [
        {
          listener: {
            name: '0.0.0.0_15090',
            address: addr(15090),
            filter_chains: [
              {
                filters: [
                  {
                    name: 'envoy.filters.network.http_connection_manager',
                    typed_config: {
                      '@type': HCM_TYPE,
                      stat_prefix: 'stats',
                      route_config: {
                        virtual_hosts: [
                          { name: 'backend', domains: ['*'], routes: [{ match: { prefix: '/stats/prometheus' }, route: { cluster: 'prometheus_stats' } }] },
                        ],
                      },
                    },
                  },
                ],
              },
            ],
          },
        },
      ],
      dynamic_listeners: [
        {
          name: '0.0.0.0_8080',
          active_state: { listener: { name: '0.0.0.0_8080', address: addr(8080), filter_chains: [{ filters: [hcm('outbound_0.0.0.0_8080;', 'http.8080')] }] } },
        },
        {
          name: '0.0.0.0_8443',
          warming_state: {
            listener: {
              name: '0.0.0.0_8443',
              address: addr(8443),
              filter_chains: [
                {
                  filter_chain_match: { server_names: ['secure.example.com'] },
                  transport_socket: { name: 'envoy.transport_sockets.tls' },
                  filters: [hcm('outbound_0.0.0.0_8443;', 'https.443.https.gw.default')],
                },
                {
                  filter_chain_match: { server_names: ['pass.example.com'] },
                  filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: PASS, cluster: PASS } }],
                },
              ],
            },
          },
        },
      ],
    },
    { '@type': T.scopedRoutes },
    {
      '@type': T.routes,
      dynamic_route_configs: [
        {
          route_config: {
            name: 'http.8080',
            virtual_hosts: [
              {
                name: 'httpbin.example.com:80',
                domains: ['httpbin.example.com'],
                routes: [
                  {
                    match: { prefix: '/status' },
                    route: {
                      cluster: HTTPBIN,
                      timeout: '0s',
                      retry_policy: { retry_on: 'connect-failure', num_retries: 2 },
                      request_mirror_policies: [{ cluster: MIRROR }],
                    },
                    metadata: { filter_metadata: { istio: { config: '/apis/networking.istio.io/v1/namespaces/default/virtual-service/httpbin' } } },
                  },
                  {
                    name: 'canary',
                    match: {
                      path: '/v2',
                      headers: [
                        { name: 'x-evil', string_match: { exact: "a'b <img src=x onerror=alert(1)>" } },
                        { name: ':method', string_match: { exact: 'POST' } },
                      ],
                    },
                    route: {
                      weighted_clusters: {
                        clusters: [
                          { name: V1, weight: 75 },
                          { name: V2, weight: 25 },
                        ],
                      },
                    },
                  },
                  { match: { prefix: '/old' }, redirect: { path_redirect: '/new', response_code: 'FOUND' } },
                  { match: { safe_regex: { regex: '/gone/.*' } }, route: { cluster: MISSING } },
                ],
              },
              { name: '*.wild.example.com:80', domains: ['*.wild.example.com'], routes: [{ match: { prefix: '' }, direct_response: { status: 418 } }] },
            ],
          },
        },
        {
          route_config: {
            name: 'https.443.https.gw.default',
            virtual_hosts: [
              { name: 'secure.example.com:443', domains: ['secure.example.com'], routes: [{ match: { prefix: '/' }, route: { cluster: HTTPBIN } }] },
            ],
          },
        },
      ],
    },
  ];
}

type HostStatus = envoy.admin.v3.HostStatus;
const host = (ip: string, health: HostStatus['health_status'], rqTotal = 0): HostStatus => ({
  address: { socket_address: { address: ip, port_value: 8000 } },
  stats: [
    { name: 'rq_total', ...(rqTotal ? { value: String(rqTotal) } : {}) },
    { type: 'GAUGE', name: 'rq_active' },
  ],
  health_status: health,
});

const CLUSTERS: envoy.admin.v3.Clusters = {
  cluster_statuses: [
    { name: 'prometheus_stats', host_statuses: [host('127.0.0.1', { eds_health_status: 'HEALTHY' })] },
    {
      name: HTTPBIN,
      host_statuses: [host('127.0.0.2', { eds_health_status: 'HEALTHY' }, 5), host('127.0.0.3', { eds_health_status: 'HEALTHY', failed_outlier_check: true })],
    },
    { name: V1, host_statuses: [host('127.0.0.2', { eds_health_status: 'HEALTHY' })] },
    { name: V2 },
    { name: PASS, host_statuses: [host('127.0.0.4', { eds_health_status: 'UNHEALTHY' })] },
    { name: UNUSED },
    { name: MIRROR },
  ],
};

const STATS = new Map<string, number>([
  ['listener.0.0.0.0_8080.downstream_cx_total', 3],
  ['http.outbound_0.0.0.0_8080;.downstream_rq_total', 7],
  ['http.outbound_0.0.0.0_8080;.no_route', 1],
  [`cluster.${HTTPBIN};.upstream_rq_total`, 5],
  [`cluster.${HTTPBIN}.upstream_rq_total`, 999], // not the alt_stat_name: never read
  [`tcp.${PASS}.downstream_cx_total`, 2],
]);

const map = (): RouteMap => buildRouteMap(configs(), CLUSTERS, STATS);
const node = (m: RouteMap, id: string) => {
  const n = m.nodes.find((x) => x.id === id);
  assert.ok(n, `node ${id} in ${m.nodes.map((x) => x.id).join(', ')}`);
  return n;
};

test('nodes per kind, in order: the configuration listeners before the bootstrap one, referenced clusters before the rest', () => {
  const m = map();
  const ids = (kind: string) => m.nodes.filter((n) => n.kind === kind).map((n) => n.name);
  assert.deepEqual(ids('listener'), ['0.0.0.0_8080', '0.0.0.0_8443', '0.0.0.0_15090']);
  assert.deepEqual(ids('filter_chain'), ['every connection', 'sni secure.example.com', 'sni pass.example.com', 'every connection']);
  assert.deepEqual(ids('virtual_host'), ['httpbin.example.com:80', '*.wild.example.com:80', 'secure.example.com:443', 'backend']);
  assert.deepEqual(ids('route'), ['prefix /status', 'canary', 'prefix /old', 'regex /gone/.*', 'prefix /', 'prefix /', 'prefix /stats/prometheus']);
  assert.deepEqual(ids('cluster'), [HTTPBIN, MIRROR, V1, V2, MISSING, PASS, 'prometheus_stats', UNUSED]);
  assert.deepEqual(ids('endpoint'), ['127.0.0.2:8000', '127.0.0.3:8000', '127.0.0.2:8000', '127.0.0.4:8000', '127.0.0.1:8000']);
});

test('edges: listener -> chains -> virtual hosts -> routes -> clusters (weights, mirror) -> endpoints; a TCP proxy chain goes straight to its cluster', () => {
  const m = map();
  const edges = m.edges.map((e) => `${e.from} -> ${e.to}${e.label ? ` [${e.label}]` : ''}`);
  assert.deepEqual(edges, [
    'listener:0.0.0.0_8080 -> chain:0.0.0.0_8080#0',
    'chain:0.0.0.0_8080#0 -> vhost:http.8080/httpbin.example.com:80',
    `vhost:http.8080/httpbin.example.com:80 -> route:http.8080/httpbin.example.com:80/0`,
    `route:http.8080/httpbin.example.com:80/0 -> cluster:${HTTPBIN}`,
    `route:http.8080/httpbin.example.com:80/0 -> cluster:${MIRROR} [mirror]`,
    `vhost:http.8080/httpbin.example.com:80 -> route:http.8080/httpbin.example.com:80/1`,
    `route:http.8080/httpbin.example.com:80/1 -> cluster:${V1} [75%]`,
    `route:http.8080/httpbin.example.com:80/1 -> cluster:${V2} [25%]`,
    `vhost:http.8080/httpbin.example.com:80 -> route:http.8080/httpbin.example.com:80/2`,
    `vhost:http.8080/httpbin.example.com:80 -> route:http.8080/httpbin.example.com:80/3`,
    `route:http.8080/httpbin.example.com:80/3 -> cluster:${MISSING}`,
    'chain:0.0.0.0_8080#0 -> vhost:http.8080/*.wild.example.com:80',
    'vhost:http.8080/*.wild.example.com:80 -> route:http.8080/*.wild.example.com:80/0',
    'listener:0.0.0.0_8443 -> chain:0.0.0.0_8443#0',
    'chain:0.0.0.0_8443#0 -> vhost:https.443.https.gw.default/secure.example.com:443',
    'vhost:https.443.https.gw.default/secure.example.com:443 -> route:https.443.https.gw.default/secure.example.com:443/0',
    `route:https.443.https.gw.default/secure.example.com:443/0 -> cluster:${HTTPBIN}`,
    `chain:0.0.0.0_8443#1 -> cluster:${PASS}`,
    'listener:0.0.0.0_8443 -> chain:0.0.0.0_8443#1',
    'listener:0.0.0.0_15090 -> chain:0.0.0.0_15090#0',
    'chain:0.0.0.0_15090#0 -> vhost:0.0.0.0_15090#0/backend',
    'vhost:0.0.0.0_15090#0/backend -> route:0.0.0.0_15090#0/backend/0',
    'route:0.0.0.0_15090#0/backend/0 -> cluster:prometheus_stats',
    `cluster:${HTTPBIN} -> endpoint:${HTTPBIN}/127.0.0.2:8000`,
    `cluster:${HTTPBIN} -> endpoint:${HTTPBIN}/127.0.0.3:8000`,
    `cluster:${V1} -> endpoint:${V1}/127.0.0.2:8000`,
    `cluster:${PASS} -> endpoint:${PASS}/127.0.0.4:8000`,
    'cluster:prometheus_stats -> endpoint:prometheus_stats/127.0.0.1:8000',
  ]);
  for (const e of m.edges) {
    assert.ok(m.nodes.some((n) => n.id === e.from) && m.nodes.some((n) => n.id === e.to), `edge ${e.from} -> ${e.to} joins two nodes`);
  }
});

test('health: all hosts pass, some fail (outlier ejection), none pass, no hosts, and a cluster no configuration has', () => {
  const m = map();
  const cases: [string, string | undefined][] = [
    [HTTPBIN, 'degraded'],
    [V1, 'healthy'],
    [V2, 'empty'],
    [PASS, 'unhealthy'],
    [MISSING, 'missing'],
  ];
  for (const [name, health] of cases) assert.equal(node(m, `cluster:${name}`).health, health, name);
  assert.equal(node(m, `endpoint:${HTTPBIN}/127.0.0.3:8000`).hostHealth, 'HEALTHY failed_outlier_check');
  assert.equal(node(m, `endpoint:${HTTPBIN}/127.0.0.3:8000`).health, 'unhealthy');
  assert.equal(node(m, `endpoint:${PASS}/127.0.0.4:8000`).hostHealth, 'UNHEALTHY');
  assert.deepEqual(node(m, `cluster:${MISSING}`).detail, ['not in the configuration']);
  assert.equal(node(m, `cluster:${MISSING}`).configDump, '');
  assert.ok(node(m, `cluster:${UNUSED}`).detail.includes('no route sends here'));
});

test("counters under Envoy's names: listener.<address>_<port>, http.<stat_prefix>, tcp.<stat_prefix>, cluster.<alt_stat_name>, the hosts' own", () => {
  const m = map();
  const stats = (id: string) => node(m, id).stats.map((s) => `${s.label}=${s.value}`);
  assert.deepEqual(stats('listener:0.0.0.0_8080'), ['downstream_cx_total=3']);
  assert.deepEqual(stats('chain:0.0.0.0_8080#0'), ['downstream_rq_total=7', 'no_route=1']);
  assert.deepEqual(stats('chain:0.0.0.0_8443#1'), ['downstream_cx_total=2']);
  assert.deepEqual(stats(`cluster:${HTTPBIN}`), ['upstream_rq_total=5']);
  assert.equal(node(m, `cluster:${HTTPBIN}`).stats[0]?.stat, `cluster.${HTTPBIN};.upstream_rq_total`);
  assert.deepEqual(stats(`endpoint:${HTTPBIN}/127.0.0.2:8000`), ['rq_total=5', 'rq_error=0', 'rq_active=0', 'cx_active=0']);
  assert.deepEqual(stats('route:http.8080/httpbin.example.com:80/0'), [], 'Envoy keeps no per-route counters without a route stat_prefix');
});

test('details: the match, the action and the Istio object a route came from; a filter chain terminating or passing TLS', () => {
  const m = map();
  assert.deepEqual(node(m, 'route:http.8080/httpbin.example.com:80/0').detail, ['retries 2', 'VirtualService default/httpbin']);
  assert.deepEqual(node(m, 'route:http.8080/httpbin.example.com:80/1').detail, [
    "path /v2, header x-evil=a'b <img src=x onerror=alert(1)>, header :method=POST",
  ]);
  assert.deepEqual(node(m, 'route:http.8080/httpbin.example.com:80/2').detail, ['redirect FOUND /new']);
  assert.deepEqual(node(m, 'route:http.8080/*.wild.example.com:80/0').detail, ['direct response 418']);
  assert.deepEqual(node(m, 'chain:0.0.0.0_8443#0').detail, ['TLS terminated here', 'HTTP, routes https.443.https.gw.default']);
  assert.deepEqual(node(m, 'chain:0.0.0.0_8443#1').detail, ['TLS passed through', 'TCP proxy']);
  assert.deepEqual(node(m, 'listener:0.0.0.0_8443').detail, ['0.0.0.0:8443', 'warming']);
  assert.deepEqual(node(m, 'listener:0.0.0.0_15090').detail, ['0.0.0.0:15090', 'bootstrap (static)']);
});

test('explain commands: port, Host (a name under a wildcard), path, method and headers, TLS and SNI, shell-quoted; a regex match gives no --path', () => {
  const m = map();
  const cases: [string, string][] = [
    ['route:http.8080/httpbin.example.com:80/0', 'meshgate explain --port 8080 --host httpbin.example.com --path /status'],
    [
      'route:http.8080/httpbin.example.com:80/1',
      `meshgate explain --port 8080 --host httpbin.example.com --path /v2 --header 'x-evil=a'\\''b <img src=x onerror=alert(1)>' --method POST`,
    ],
    ['route:http.8080/httpbin.example.com:80/3', 'meshgate explain --port 8080 --host httpbin.example.com'],
    ['route:http.8080/*.wild.example.com:80/0', 'meshgate explain --port 8080 --host www.wild.example.com --path /'],
    [
      'route:https.443.https.gw.default/secure.example.com:443/0',
      'meshgate explain --port 8443 --tls --sni secure.example.com --host secure.example.com --path /',
    ],
    ['chain:0.0.0.0_8443#1', 'meshgate explain --port 8443 --tls --sni pass.example.com --host pass.example.com'],
    [`cluster:${PASS}`, 'meshgate explain --port 8443 --tls --sni pass.example.com --host pass.example.com'],
    ['listener:0.0.0.0_8080', 'meshgate explain --port 8080 --host httpbin.example.com'],
    [`cluster:${HTTPBIN}`, 'meshgate explain --port 8080 --host httpbin.example.com --path /status'],
    [
      `endpoint:${V1}/127.0.0.2:8000`,
      `meshgate explain --port 8080 --host httpbin.example.com --path /v2 --header 'x-evil=a'\\''b <img src=x onerror=alert(1)>' --method POST`,
    ],
    [`cluster:${UNUSED}`, ''],
  ];
  for (const [id, cmd] of cases) assert.equal(node(m, id).explain, cmd, id);
});

test("every node's /config_dump query selects its own fragment through the admin's renderer", () => {
  const cs = configs();
  const m = buildRouteMap(cs, CLUSTERS, STATS);
  const expected: Record<string, (n: { name: string }, body: string) => boolean> = {
    listener: (n, body) => body.includes(`"name": ${JSON.stringify(n.name)}`),
    filter_chain: (_n, body) => body.includes('filter_chains'),
    virtual_host: (n, body) => body.includes(`"name": ${JSON.stringify(n.name)}`),
    route: (_n, body) => body.includes('"routes"'),
    cluster: (n, body) => body.includes(`"name": ${JSON.stringify(n.name)}`),
    endpoint: () => true,
  };
  let checked = 0;
  for (const n of m.nodes) {
    if (n.configDump === '') continue;
    const u = new URL(n.configDump, 'http://admin');
    assert.equal(u.pathname, '/config_dump');
    const nr = u.searchParams.get('name_regex');
    const re = nr === null ? undefined : compileRe2(nr);
    assert.ok(re === undefined || !isRe2Error(re), `${n.id}: name_regex ${nr} compiles`);
    const r = renderConfigDump(cs, { resource: u.searchParams.get('resource') ?? undefined, mask: u.searchParams.get('mask') ?? undefined, nameRegex: re });
    assert.equal(r.status, 200, `${n.id}: ${n.configDump}: ${r.body}`);
    const parsed = JSON.parse(r.body) as { configs: unknown[] };
    assert.equal(parsed.configs.length, 1, `${n.id}: ${n.configDump} selects one element`);
    assert.ok(expected[n.kind]?.(n, r.body), `${n.id}: ${n.configDump} shows its fragment:\n${r.body}`);
    checked++;
  }
  assert.ok(checked >= m.nodes.length - 1, 'only the missing cluster has no fragment');
});

test('re2Literal matches exactly its text; shellWord leaves plain words bare and quotes the rest', () => {
  for (const name of [HTTPBIN, '0.0.0.0_8080', 'a+b(c)[d]{e}^$\\*?', 'x.y']) {
    const re = compileRe2(re2Literal(name));
    assert.ok(!isRe2Error(re));
    assert.ok(re.fullMatch(name), name);
    assert.ok(!re.fullMatch(`${name}x`), `${name}x`);
  }
  assert.ok(!(compileRe2(re2Literal('a.b')) as { fullMatch(s: string): boolean }).fullMatch('axb'));
  const cases: [string, string][] = [
    ['httpbin.example.com', 'httpbin.example.com'],
    ['/status/200', '/status/200'],
    ['x-a=b', 'x-a=b'],
    ['a b', "'a b'"],
    ["it's", `'it'\\''s'`],
    ['$(rm -rf /)', "'$(rm -rf /)'"],
    ['', "''"],
  ];
  for (const [s, w] of cases) assert.equal(shellWord(s), w, s);
});

test('/routemap serves the page with its script and style inline, allowed by their hashes only; ?format=json the graph', async () => {
  const ctx = {
    clusters: () => [],
    hostStats: () => Promise.resolve(new Map<string, number[]>()),
    configDump: () => configs(),
    stats: () => Promise.resolve([{ name: `cluster.${HTTPBIN};.upstream_rq_total`, kind: COUNTER, value: 4, used: true }]),
  } as unknown as AdminContext;
  const page = await routeMapReply(ctx, new URLSearchParams());
  assert.equal(page.type, 'text/html; charset=UTF-8');
  const csp = page.headers?.[page.headers.indexOf('content-security-policy') + 1] ?? '';
  const sha = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
  const script = /<script>([\s\S]*)<\/script>/.exec(page.body)?.[1] ?? '';
  const style = /<style>([\s\S]*)<\/style>/.exec(page.body)?.[1] ?? '';
  assert.ok(script.includes('/routemap?format=json') && style.includes('.node'), 'the assets are inlined');
  assert.match(
    csp,
    new RegExp(
      `^default-src 'none'; script-src ${sha(script).replace(/[+/]/g, '\\$&')}; style-src ${sha(style).replace(/[+/]/g, '\\$&')}; connect-src 'self';`,
    ),
  );
  assert.doesNotMatch(page.body, /\ssrc=|<link rel="stylesheet"|@import|url\(/, 'nothing loaded from elsewhere');

  const json = await routeMapReply(ctx, new URLSearchParams('format=json'));
  assert.equal(json.type, 'application/json');
  const m = JSON.parse(json.body) as RouteMap;
  assert.equal(m.nodes.find((n) => n.id === `cluster:${HTTPBIN}`)?.stats[0]?.value, 4);
  assert.equal(m.nodes.find((n) => n.id === `cluster:${HTTPBIN}`)?.health, 'empty', 'no hosts in /clusters');
});
