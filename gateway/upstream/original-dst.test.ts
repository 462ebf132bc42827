// ORIGINAL_DST clusters (DestinationRule loadBalancer PASSTHROUGH): validation as Envoy's
// OriginalDstClusterFactory, host choice as OriginalDstCluster::LoadBalancer::chooseHost (override header only
// with use_http_header, restored local address, port override), cleanup of idle hosts, and through the proxy:
// a request is forwarded to the header's address, a malformed or ignored header gives 503 no healthy upstream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { pino } from 'pino';
import { get, rawRequest, type RawResponse } from '../../e2e/lib/http.ts';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { StatsStore } from '../stats/store.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../test/ads-server.ts';
import { eventually, gatewayListener, istioRoute, routeConfig, startEchoBackend, type Echo } from '../test/fixtures.ts';
import { freePort } from '../test/raw-client.ts';
import type { envoy } from '../../xds/envoy.ts';
import { Cluster, parseCluster } from './cluster.ts';
import { OriginalDstHosts, parseAddressAndPort, type OriginalDstConfig } from './original-dst.ts';

const HDR = 'x-envoy-original-dst-host';

function odCluster(extra: envoy.config.cluster.v3.Cluster = {}): envoy.config.cluster.v3.Cluster {
  return { name: 'pt', type: 'ORIGINAL_DST', connect_timeout: '1s', lb_policy: 'CLUSTER_PROVIDED', ...extra };
}

function hosts(config: Partial<OriginalDstConfig> = {}): { od: OriginalDstHosts; changes: number[]; invalid: () => number } {
  const changes: number[] = [];
  let invalid = 0;
  const od = new OriginalDstHosts(
    { headerName: undefined, portOverride: undefined, cleanupIntervalMs: 60_000, ...config },
    {
      onChange: (h) => changes.push(h.length),
      onInvalid: () => invalid++,
    },
  );
  return { od, changes, invalid: () => invalid };
}

describe('ORIGINAL_DST: cluster validation (OriginalDstClusterFactory)', () => {
  test('ORIGINAL_DST with CLUSTER_PROVIDED is accepted, as istiod writes it for PASSTHROUGH', () => {
    const s = parseCluster(odCluster({ alt_stat_name: 'pt;', circuit_breakers: { thresholds: [{ max_connections: 4294967295 }] }, common_lb_config: {} }));
    assert.equal(s.type, 'ORIGINAL_DST');
    assert.deepEqual(s.originalDst, { headerName: undefined, portOverride: undefined, cleanupIntervalMs: 5000 });
  });
  test('use_http_header (default header name), http_header_name, upstream_port_override, cleanup_interval', () => {
    assert.equal(parseCluster(odCluster({ original_dst_lb_config: { use_http_header: true } })).originalDst?.headerName, HDR);
    const s = parseCluster(
      odCluster({ original_dst_lb_config: { use_http_header: true, http_header_name: 'X-Dst', upstream_port_override: 9090 }, cleanup_interval: '1s' }),
    );
    assert.deepEqual(s.originalDst, { headerName: 'x-dst', portOverride: 9090, cleanupIntervalMs: 1000 });
  });
  const rejects: [string, envoy.config.cluster.v3.Cluster, RegExp][] = [
    ['another lb_policy', { lb_policy: 'ROUND_ROBIN' }, /LB policy ROUND_ROBIN is not valid for Cluster type ORIGINAL_DST/],
    ['a load_assignment', { load_assignment: { cluster_name: 'pt', endpoints: [] } }, /ORIGINAL_DST clusters must have no load assignment configured/],
    [
      'http_header_name without use_http_header',
      { original_dst_lb_config: { http_header_name: 'x-dst' } },
      /invalid config http_header_name=x-dst and use_http_header is false/,
    ],
    ['metadata_key (not implemented)', { original_dst_lb_config: { metadata_key: { key: 'k', path: [] } } }, /metadata_key is not supported/],
  ];
  for (const [what, extra, re] of rejects) {
    test(`NACK: ${what}`, () => assert.throws(() => parseCluster(odCluster(extra)), re));
  }
  test('NACK: CLUSTER_PROVIDED on another cluster type', () => {
    assert.throws(() => parseCluster({ name: 'x', type: 'STATIC', lb_policy: 'CLUSTER_PROVIDED' }), /CLUSTER_PROVIDED/);
  });
});

describe('ORIGINAL_DST: override address parsing (parseInternetAddressAndPortNoThrow)', () => {
  const cases: [string, { address: string; port: number } | undefined][] = [
    ['10.1.2.3:8080', { address: '10.1.2.3', port: 8080 }],
    ['[::1]:80', { address: '::1', port: 80 }],
    ['[2001:db8:0:0::1]:443', { address: '2001:db8::1', port: 443 }],
    ['10.1.2.3', undefined],
    ['example.com:80', undefined],
    ['10.1.2.3:65536', undefined],
    ['10.1.2.3:', undefined],
    ['::1:80', undefined],
    ['10.1.2.300:80', undefined],
    [' 10.1.2.3:80', undefined],
  ];
  for (const [v, want] of cases) test(JSON.stringify(v), () => assert.deepEqual(parseAddressAndPort(v), want));
});

describe('ORIGINAL_DST: host choice', () => {
  test('use_http_header: the first header value picks the host, created once and reused', () => {
    const { od, changes } = hosts({ headerName: HDR });
    try {
      const a = od.choose({ headers: [HDR, '127.0.0.5:81', HDR, '127.0.0.6:82'] });
      assert.equal(a?.key, '127.0.0.5:81');
      assert.equal(a?.weight, 1);
      assert.equal(od.choose({ headers: [HDR, '127.0.0.5:81'] }), a);
      assert.equal(od.choose({ headers: [HDR, '127.0.0.6:82'] })?.key, '127.0.0.6:82');
      assert.deepEqual(changes, [1, 2]);
    } finally {
      od.close();
    }
  });
  test('without use_http_header the header is ignored (Istio never sets it): no host', () => {
    const { od, invalid } = hosts();
    try {
      assert.equal(od.choose({ headers: [HDR, '127.0.0.5:81'], localAddress: '127.0.0.1', localPort: 8080 }), undefined);
      assert.equal(invalid(), 0);
    } finally {
      od.close();
    }
  });
  test('a malformed header counts original_dst_host_invalid and gives no host (router: 503 no healthy upstream)', () => {
    const { od, invalid } = hosts({ headerName: HDR });
    try {
      assert.equal(od.choose({ headers: [HDR, 'httpbin.default:80'] }), undefined);
      assert.equal(invalid(), 1);
    } finally {
      od.close();
    }
  });
  test('a malformed header falls back to a restored local address', () => {
    const { od } = hosts({ headerName: HDR });
    try {
      assert.equal(od.choose({ headers: [HDR, 'nope'], localAddress: '127.0.0.9', localPort: 15001, localAddressRestored: true })?.key, '127.0.0.9:15001');
    } finally {
      od.close();
    }
  });
  test('the local address is the destination only when the listener restored it (SO_ORIGINAL_DST)', () => {
    const { od } = hosts();
    try {
      assert.equal(od.choose({ localAddress: '127.0.0.9', localPort: 8080, localAddressRestored: false }), undefined);
      assert.equal(od.choose({ localAddress: '127.0.0.9', localPort: 8080, localAddressRestored: true })?.key, '127.0.0.9:8080');
      assert.equal(od.choose(undefined), undefined);
    } finally {
      od.close();
    }
  });
  test('upstream_port_override replaces the port of either source', () => {
    const { od } = hosts({ headerName: HDR, portOverride: 9090 });
    try {
      assert.equal(od.choose({ headers: [HDR, '10.0.0.1:80'] })?.key, '10.0.0.1:9090');
      assert.equal(od.choose({ localAddress: '10.0.0.2', localPort: 80, localAddressRestored: true })?.key, '10.0.0.2:9090');
    } finally {
      od.close();
    }
  });
  test('cleanup: a host survives the pass after it was chosen, then goes unless it has requests or connections', () => {
    const { od, changes } = hosts({ headerName: HDR });
    try {
      const a = od.choose({ headers: [HDR, '10.0.0.1:80'] });
      const b = od.choose({ headers: [HDR, '10.0.0.2:80'] });
      assert.ok(a && b);
      b.activeRq = 1;
      od.cleanup();
      assert.equal(od.hosts.length, 2, 'both were used since the last pass');
      od.cleanup();
      assert.deepEqual(od.hosts, [b], 'the idle one is removed, the busy one kept');
      b.activeRq = 0;
      od.cleanup();
      assert.deepEqual(od.hosts, []);
      assert.deepEqual(changes, [1, 2, 1, 0]);
    } finally {
      od.close();
    }
  });
  test('on a Cluster: hosts appear in cluster.hosts, membership_change counts, the invalid counter is per cluster', () => {
    const json = odCluster({ original_dst_lb_config: { use_http_header: true } });
    const store = new StatsStore();
    const c = new Cluster(parseCluster(json), json, store, { versionInfo: '1', addedViaApi: true, log: pino({ level: 'silent' }) });
    try {
      assert.equal(c.warm, true);
      assert.equal(c.chooseHost(), undefined);
      assert.equal(c.chooseHost(undefined, { headers: [HDR, '10.0.0.1:80'] })?.key, '10.0.0.1:80');
      assert.deepEqual(
        c.hosts.map((h) => h.key),
        ['10.0.0.1:80'],
      );
      c.chooseHost(undefined, { headers: [HDR, 'bad'] });
      assert.equal(store.values[store.counter('cluster.pt.membership_change')], 1);
      assert.equal(store.values[store.counter('cluster.pt.original_dst_host_invalid')], 1);
    } finally {
      c.close();
    }
  });
});

describe('ORIGINAL_DST through the proxy', () => {
  const ads = new TestAdsServer();
  let proxy: Proxy;
  let port = 0;
  let backend: { server: Server; port: number; seen: Echo[] };
  const HOST = 'pt.example.com';
  // As istiod writes PASSTHROUGH (no use_http_header), and the same with use_http_header (hand-written xDS).
  const ISTIO = 'outbound|80|pt|direct.default.svc.cluster.local';
  const HEADER = 'header-pt';
  const admin = async (path: string): Promise<RawResponse> => rawRequest('127.0.0.1', proxy.ports.admin, `GET ${path} HTTP/1.1\r\nHost: admin\r\n\r\n`);
  const req = async (path: string, dst?: string): Promise<RawResponse> =>
    rawRequest('127.0.0.1', port, `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${dst === undefined ? '' : `${HDR}: ${dst}\r\n`}\r\n`);

  before(async () => {
    await ads.start();
    port = await freePort();
    backend = await startEchoBackend('127.0.0.2', 'direct');
    // (The test server takes resources as plain JSON.)
    ads.set(CLUSTER_TYPE, [
      { ...odCluster({ name: ISTIO, alt_stat_name: `${ISTIO};`, connect_timeout: '10s' }) },
      { ...odCluster({ name: HEADER, original_dst_lb_config: { use_http_header: true } }) },
    ]);
    ads.set(ENDPOINT_TYPE, []);
    ads.set(LISTENER_TYPE, [gatewayListener(port)]);
    ads.set(ROUTE_TYPE, [
      routeConfig(`http.${port}`, [{ name: `${HOST}:80`, domains: [HOST], routes: [istioRoute('/istio', ISTIO), istioRoute('/header', HEADER)] }]),
    ]);
    proxy = await startTestProxy(ads);
    await eventually('route', async () => ((await get('127.0.0.1', port, '/header', HOST)).status !== 404 ? true : undefined));
  });

  after(async () => {
    await proxy?.close();
    await ads.stop();
    backend?.server.close();
    backend?.server.closeAllConnections();
  });

  test('the clusters are ACKed (no NACK for ORIGINAL_DST / CLUSTER_PROVIDED)', () => {
    const nacks = ads.requests.filter((r) => r.error_detail && r.error_detail.message);
    assert.deepEqual(
      nacks.map((r) => r.error_detail?.message),
      [],
    );
  });

  test('use_http_header: the request goes to the address in x-envoy-original-dst-host', async () => {
    const r = await req('/header/a', `127.0.0.2:${backend.port}`);
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body.toString()) as Echo).url, '/header/a');
    const clusters = (await admin('/clusters')).body.toString();
    assert.match(clusters, new RegExp(`^${HEADER}::127\\.0\\.0\\.2:${backend.port}::rq_total::1$`, 'm'));
  });

  test('malformed header: 503 no healthy upstream (UH), original_dst_host_invalid counted', async () => {
    const r = await req('/header/b', 'direct.default:80');
    assert.equal(r.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.equal(r.body.toString(), 'no healthy upstream');
    const stats = (await admin(`/stats?filter=${encodeURIComponent('original_dst_host_invalid')}`)).body.toString();
    assert.match(stats, new RegExp(`cluster\\.${HEADER}\\.original_dst_host_invalid: 1`));
  });

  test('Istio-shaped PASSTHROUGH cluster: no restored destination on a gateway listener, header ignored: 503 no healthy upstream', async () => {
    for (const dst of [undefined, `127.0.0.2:${backend.port}`]) {
      const r = await req('/istio', dst);
      assert.equal(r.status, 503);
      assert.equal(r.body.toString(), 'no healthy upstream');
    }
    assert.equal(backend.seen.filter((e) => e.url === '/istio').length, 0);
  });
});
