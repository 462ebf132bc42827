// The proxy against an in-test ADS server serving istiod-shaped resources, with backends on 127.0.0.2 and
// 127.0.0.3 and a raw HTTP client asserting exact status lines, header lines and bodies.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { get, rawRequest, type RawResponse } from '../e2e/lib/http.ts';
import { startProxy, type Proxy } from './proxy.ts';
import { startTestProxy, testProxyOptions } from './test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from './test/ads-server.ts';
import { HTTPBIN, assignment, edsCluster, eventually, gatewayListener, istioRoute, routeConfig, startEchoBackend, type Echo } from './test/fixtures.ts';
import { RawConnection, freePort } from './test/raw-client.ts';

const HOST = 'httpbin.example.com';
const GW = '127.0.0.1';
const EMPTY = 'outbound|8000|test-version|httpbin.default.svc.cluster.local';
const REFUSED = 'outbound|9|||refused.default.svc.cluster.local';
// Priority 0: two endpoints that refuse connections; priority 1: a working one.
const PRIORITIES = 'outbound|80||priorities.default.svc.cluster.local';
const RETRY_CONNECT_FAILURE = { retry_on: 'connect-failure', num_retries: 3 };

const headerNames = (r: RawResponse): string[] => r.headers.map(([k]) => k);
function echoed(r: RawResponse): Echo {
  return JSON.parse(r.body.toString()) as Echo;
}
function echoHeader(e: Echo, name: string): string | undefined {
  for (let i = 0; i < e.rawHeaders.length; i += 2) if (e.rawHeaders[i] === name) return e.rawHeaders[i + 1];
  return undefined;
}

describe('proxy: istiod-shaped xDS to Envoy-exact answers', () => {
  const ads = new TestAdsServer();
  let proxy: Proxy;
  let port = 0;
  let closedPort = 0;
  let v1: { server: Server; port: number; seen: Echo[] };
  let v2: { server: Server; port: number; seen: Echo[] };
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-proxy-test-'));
  const accessLog = join(dir, 'access.log');
  const admin = async (path: string, method = 'GET'): Promise<RawResponse> =>
    rawRequest('127.0.0.1', proxy.ports.admin, `${method} ${path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n`);
  const stat = async (name: string): Promise<number> => {
    const text = (await admin(`/stats?filter=${encodeURIComponent(`^${name.replace(/[.|]/g, '\\$&')}$`)}`)).body.toString();
    const m = /: (\d+)\n$/.exec(text);
    if (!m) throw new Error(`no stat ${name}: ${text}`);
    return Number(m[1]);
  };

  const routes = (): Record<string, unknown> =>
    routeConfig(`http.${port}`, [
      {
        name: `${HOST}:80`,
        domains: [HOST],
        routes: [
          istioRoute('/status', HTTPBIN),
          istioRoute('/delay', HTTPBIN),
          istioRoute('/anything', EMPTY),
          istioRoute('/unknown-cluster', 'outbound|8000|nope|httpbin.default.svc.cluster.local'),
          istioRoute('/refused', REFUSED),
          // Istio's retryRemoteLocalities: previous_priorities, update_frequency 2.
          istioRoute(
            '/priorities',
            PRIORITIES,
            {},
            {
              retry_policy: {
                ...RETRY_CONNECT_FAILURE,
                retry_priority: {
                  name: 'envoy.retry_priorities.previous_priorities',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
                    update_frequency: 2,
                  },
                },
              },
            },
          ),
          istioRoute('/same-priority', PRIORITIES, {}, { retry_policy: RETRY_CONNECT_FAILURE }),
          istioRoute('/timeout', HTTPBIN, {}, { timeout: '0.3s' }),
          istioRoute('/retry5xx', HTTPBIN, {}, { retry_policy: { retry_on: '5xx', num_retries: 2 } }),
          istioRoute('/v1', HTTPBIN, {}, { prefix_rewrite: '/v2' }),
          istioRoute('/hdr', HTTPBIN, {
            request_headers_to_add: [{ header: { key: 'x-added', value: 'yes' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
            response_headers_to_add: [{ header: { key: 'x-resp', value: 'r' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
            response_headers_to_remove: ['x-instance'],
          }),
          { match: { prefix: '/old' }, redirect: { path_redirect: '/new' } },
          { match: { prefix: '/down' }, direct_response: { status: 503, body: { inline_string: 'down' } } },
          { match: { prefix: '/post' }, route: { cluster: HTTPBIN, timeout: '0s' } },
        ],
      },
    ]);

  before(async () => {
    await ads.start();
    port = await freePort();
    closedPort = await freePort();
    v1 = await startEchoBackend('127.0.0.2', 'httpbin-v1', (req) => {
      if (req.url === '/status/418') return { status: 418, body: '', headers: ['content-length', '0'] };
      if (req.url === '/status/fine')
        return { status: 200, body: 'ok', headers: ['server', 'gunicorn', 'date', 'Mon, 01 Jan 2024 00:00:00 GMT', 'content-length', '2'] };
      if (req.url?.startsWith('/timeout')) return { delayMs: 1000 };
      if (req.url?.startsWith('/retry5xx') && req.headers['x-envoy-attempt-count'] === '1')
        return { status: 503, body: 'first', headers: ['content-length', '5'] };
      return undefined;
    });
    v2 = await startEchoBackend('127.0.0.3', 'httpbin-v2');
    ads.set(CLUSTER_TYPE, [edsCluster(HTTPBIN), edsCluster(EMPTY), edsCluster(REFUSED), edsCluster(PRIORITIES)]);
    const refusing = assignment(PRIORITIES, [
      { ip: '127.0.0.2', port: closedPort },
      { ip: '127.0.0.4', port: closedPort },
    ]) as { endpoints: Record<string, unknown>[] };
    const working = assignment(PRIORITIES, [{ ip: '127.0.0.3', port: v2.port }]) as { endpoints: Record<string, unknown>[] };
    ads.set(ENDPOINT_TYPE, [
      assignment(HTTPBIN, [{ ip: '127.0.0.2', port: v1.port }]),
      assignment(EMPTY, []),
      assignment(REFUSED, [{ ip: '127.0.0.2', port: closedPort }]),
      { ...refusing, endpoints: [...refusing.endpoints, { ...working.endpoints[0], priority: 1 }] },
    ]);
    ads.set(LISTENER_TYPE, [gatewayListener(port)]);
    ads.set(ROUTE_TYPE, [routes()]);
    proxy = await startTestProxy(ads, { accessLog });
  });

  after(async () => {
    await proxy?.close();
    await ads.stop();
    v1?.server.close();
    v2?.server.close();
    v1?.server.closeAllConnections();
    v2?.server.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  });

  test('unknown Host: 404 with date, server: istio-envoy, content-length: 0 and no body', async () => {
    const r = await get(GW, port, '/status/200', 'nomatch.example.com');
    assert.equal(r.statusLine, 'HTTP/1.1 404 Not Found');
    assert.deepEqual(headerNames(r), ['date', 'server', 'content-length']);
    assert.equal(r.header('server'), 'istio-envoy');
    assert.equal(r.header('content-length'), '0');
    assert.equal(r.body.length, 0);
  });

  test('known Host, no matching route: 404 NR', async () => {
    const r = await get(GW, port, '/nothing-here', HOST);
    assert.equal(r.statusLine, 'HTTP/1.1 404 Not Found');
    assert.deepEqual(headerNames(r), ['date', 'server', 'content-length']);
  });

  test('routed 200: Istio request headers reach the backend; response has server and service time', async () => {
    const r = await get(GW, port, '/status/200', HOST, {
      'X-Forwarded-For': '1.2.3.4',
      'X-Request-Id': 'client-id',
      'x-envoy-retry-on': '5xx',
      'X-Envoy-Internal': 'true',
    });
    assert.equal(r.statusLine, 'HTTP/1.1 200 OK');
    // Upstream order kept (node's backend appends Date), hop-by-hop dropped, then Envoy's additions.
    assert.deepEqual(headerNames(r), ['content-type', 'x-instance', 'content-length', 'date', 'x-envoy-upstream-service-time', 'server']);
    assert.equal(r.header('server'), 'istio-envoy');
    assert.match(r.header('x-envoy-upstream-service-time') ?? '', /^\d+$/);
    const e = echoed(r);
    assert.equal(e.url, '/status/200');
    assert.equal(e.rawHeaders[0], 'host');
    assert.equal(e.rawHeaders[1], HOST);
    assert.match(echoHeader(e, 'x-forwarded-for') ?? '', /^1\.2\.3\.4,\d+\.\d+\.\d+\.\d+$/);
    assert.equal(echoHeader(e, 'x-forwarded-proto'), 'http');
    assert.equal(echoHeader(e, 'x-envoy-external-address'), '127.0.0.1');
    // A UUID whose version digit carries the trace decision (Envoy's UUID extension): 9 for the 1 % sampled.
    assert.match(echoHeader(e, 'x-request-id') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[49][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(echoHeader(e, 'x-envoy-attempt-count'), '1');
    assert.equal(echoHeader(e, 'x-envoy-decorator-operation'), 'httpbin.default.svc.cluster.local:8000/status*');
    assert.equal(echoHeader(e, 'x-envoy-retry-on'), undefined);
    assert.equal(echoHeader(e, 'x-envoy-internal'), undefined);
    assert.equal(echoHeader(e, 'connection'), undefined, 'Envoy adds no connection header upstream');
    assert.equal(echoHeader(e, 'x-envoy-expected-rq-timeout-ms'), undefined, 'Istio timeout 0s: no expected timeout header');
  });

  test('upstream reason phrases are not forwarded; server replaced in place; upstream date kept', async () => {
    assert.equal((await get(GW, port, '/status/418', HOST)).statusLine, 'HTTP/1.1 418 Unknown');
    const r = await get(GW, port, '/status/fine', HOST);
    assert.deepEqual(r.headers.slice(0, 3), [
      ['server', 'istio-envoy'],
      ['date', 'Mon, 01 Jan 2024 00:00:00 GMT'],
      ['content-length', '2'],
    ]);
    assert.equal(r.headers[3]?.[0], 'x-envoy-upstream-service-time');
  });

  test('cluster without endpoints: 503 no healthy upstream (19 bytes), HEAD without body', async () => {
    const r = await get(GW, port, '/anything', HOST);
    assert.equal(r.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.deepEqual(headerNames(r), ['content-length', 'content-type', 'date', 'server']);
    assert.equal(r.header('content-length'), '19');
    assert.equal(r.header('content-type'), 'text/plain');
    assert.equal(r.body.toString(), 'no healthy upstream');
    const conn = await RawConnection.open(GW, port);
    try {
      const h = await conn.request(`HEAD /anything HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 5000, true);
      assert.equal(h.header('content-length'), '19');
      assert.equal(h.body.length, 0);
    } finally {
      conn.close();
    }
  });

  test('route to an unknown cluster: 503 with an empty body (NC)', async () => {
    const r = await get(GW, port, '/unknown-cluster', HOST);
    assert.equal(r.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.deepEqual(headerNames(r), ['date', 'server', 'content-length']);
    assert.equal(r.header('content-length'), '0');
  });

  test('connection refused: Istio default retries, then the 190-byte reset reply (UF,URX)', async () => {
    const before = await stat(`cluster.${REFUSED};.upstream_rq_retry`);
    const r = await get(GW, port, '/refused', HOST);
    assert.equal(r.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.equal(
      r.body.toString(),
      'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused',
    );
    assert.equal(r.header('content-length'), '190');
    assert.equal((await stat(`cluster.${REFUSED};.upstream_rq_retry`)) - before, 2);
    const line = await eventually(
      'the access log line',
      () =>
        readFileSync(accessLog, 'utf8')
          .split('\n')
          .find((l) => l.includes('"GET /refused HTTP/1.1"')),
      4000,
      100,
    );
    assert.match(
      line,
      /" 503 UF,URX upstream_reset_before_response_started\{remote_connection_failure,delayed_connect_error:_Connection_refused\} - "delayed_connect_error:_Connection_refused" 0 190 \d+ - "/,
    );
  });

  test('retry_priority previous_priorities: from the second retry on, retries avoid the priority already tried', async () => {
    // Attempt 1 and retry 1 go to priority 0 (refused); at two attempts (update_frequency 2) priority 0 is
    // excluded, so retry 2 reaches priority 1.
    const r = await get(GW, port, '/priorities', HOST);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.header('x-instance'), 'httpbin-v2');
    assert.equal(echoHeader(echoed(r), 'x-envoy-attempt-count'), '3');
    // Without it, every retry stays in priority 0, the level that has healthy hosts.
    const same = await get(GW, port, '/same-priority', HOST);
    assert.equal(same.status, 503);
    assert.match(same.body.toString(), /retried and the latest reset reason: remote connection failure/);
  });

  test('route timeout: 504 upstream request timeout; the backend saw x-envoy-expected-rq-timeout-ms', async () => {
    const r = await get(GW, port, '/timeout', HOST);
    assert.equal(r.statusLine, 'HTTP/1.1 504 Gateway Timeout');
    assert.equal(r.body.toString(), 'upstream request timeout');
    assert.equal(r.header('content-length'), '24');
    const seen = v1.seen.find((e) => e.url === '/timeout');
    assert.ok(seen);
    assert.equal(echoHeader(seen, 'x-envoy-expected-rq-timeout-ms'), '300');
  });

  test('retry_on 5xx: a 503 is retried and the second attempt answers', async () => {
    const r = await get(GW, port, '/retry5xx', HOST);
    assert.equal(r.status, 200);
    assert.equal(echoHeader(echoed(r), 'x-envoy-attempt-count'), '2');
  });

  test('prefix_rewrite sets x-envoy-original-path; route header ops apply', async () => {
    const e = echoed(await get(GW, port, '/v1/x?q=1', HOST));
    assert.equal(e.url, '/v2/x?q=1');
    assert.equal(echoHeader(e, 'x-envoy-original-path'), '/v1/x?q=1');
    const r = await get(GW, port, '/hdr', HOST, { 'x-added': 'client' });
    assert.equal(echoHeader(echoed(r), 'x-added'), 'yes');
    assert.equal(r.header('x-resp'), 'r');
    assert.equal(r.header('x-instance'), undefined);
  });

  test('redirect and direct response', async () => {
    const r = await get(GW, port, '/old?a=1', HOST);
    assert.equal(r.statusLine, 'HTTP/1.1 301 Moved Permanently');
    assert.deepEqual(
      r.headers.map(([k]) => k),
      ['location', 'date', 'server', 'content-length'],
    );
    assert.equal(r.header('location'), `http://${HOST}/new?a=1`);
    const d = await get(GW, port, '/down', HOST);
    assert.equal(d.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.deepEqual(headerNames(d), ['content-length', 'content-type', 'date', 'server']);
    assert.equal(d.body.toString(), 'down');
  });

  test('request bodies stream through (content-length and chunked); keep-alive reuses the connection', async () => {
    const conn = await RawConnection.open(GW, port);
    try {
      const a = await conn.request(`POST /post HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 5\r\n\r\nhello`);
      assert.equal(echoed(a).body, 'hello');
      const b = await conn.request(`POST /post HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n`);
      assert.equal(echoed(b).body, 'abcde');
      assert.equal(echoHeader(echoed(b), 'transfer-encoding'), 'chunked');
      assert.ok(!conn.closed);
      const c = await conn.request(`GET /status/200 HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
      assert.equal(c.header('connection'), 'close');
      assert.equal(c.headers.at(-1)?.[0], 'connection');
      assert.ok(await conn.waitClosed());
    } finally {
      conn.close();
    }
  });

  test('HTTP/1.0 gets 426 and missing Host 400, both closing the connection', async () => {
    const a = await rawRequest(GW, port, `GET /status/200 HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`);
    assert.equal(a.statusLine, 'HTTP/1.1 426 Upgrade Required');
    assert.deepEqual(
      a.headers.map(([k]) => k),
      ['date', 'server', 'connection', 'content-length'],
    );
    const b = await rawRequest(GW, port, 'GET /status/200 HTTP/1.1\r\n\r\n');
    assert.equal(b.statusLine, 'HTTP/1.1 400 Bad Request');
    assert.equal(b.header('connection'), 'close');
    const c = await rawRequest(GW, port, 'GARBAGE\r\n\r\n');
    assert.equal(c.statusLine, 'HTTP/1.1 400 Bad Request');
    assert.deepEqual(
      c.headers.map(([k]) => k),
      ['content-length', 'content-type', 'date', 'server', 'connection'],
    );
    assert.equal(c.body.toString(), 'Bad Request');
  });

  test("oversized or too many request headers: 431 with Envoy's body, connection closed", async () => {
    const big = await rawRequest(GW, port, `GET /status/200 HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`);
    assert.equal(big.statusLine, 'HTTP/1.1 431 Request Header Fields Too Large');
    assert.equal(big.body.toString(), 'Request Header Fields Too Large');
    assert.equal(big.header('content-length'), '31');
    assert.equal(big.header('connection'), 'close');
    const many = Array.from({ length: 101 }, (_, i) => `X-H${i}: v`).join('\r\n');
    const r = await rawRequest(GW, port, `GET /status/200 HTTP/1.1\r\nHost: ${HOST}\r\n${many}\r\n\r\n`);
    assert.equal(r.statusLine, 'HTTP/1.1 431 Request Header Fields Too Large');
  });

  test('path normalisation: dot segments removed before routing and upstream, %2F kept', async () => {
    assert.equal(echoed(await get(GW, port, '/a/../status/x', HOST)).url, '/status/x');
    assert.equal(echoed(await get(GW, port, '/status/a%2Fb', HOST)).url, '/status/a%2Fb');
    const bad = await get(GW, port, '/status/%00', HOST);
    assert.equal(bad.statusLine, 'HTTP/1.1 400 Bad Request');
    assert.equal(bad.body.length, 0);
  });

  test('EDS update switches hosts without a restart; CDS/LDS counters and membership follow', async () => {
    assert.equal((await get(GW, port, '/status/200', HOST)).header('x-instance'), 'httpbin-v1');
    ads.set(ENDPOINT_TYPE, [
      assignment(HTTPBIN, [{ ip: '127.0.0.3', port: v2.port }]),
      assignment(EMPTY, []),
      assignment(REFUSED, [{ ip: '127.0.0.2', port: closedPort }]),
    ]);
    await eventually('v2 to serve', async () => ((await get(GW, port, '/status/200', HOST)).header('x-instance') === 'httpbin-v2' ? true : undefined), 5000);
    assert.equal(await stat(`cluster.${HTTPBIN};.membership_healthy`), 1);
    assert.match(
      (await admin('/clusters')).body.toString(),
      new RegExp(`^${HTTPBIN.replace(/[.|]/g, '\\$&')}::127\\.0\\.0\\.3:${v2.port}::health_flags::healthy$`, 'm'),
    );
    ads.set(ENDPOINT_TYPE, [
      assignment(HTTPBIN, [{ ip: '127.0.0.2', port: v1.port }]),
      assignment(EMPTY, []),
      assignment(REFUSED, [{ ip: '127.0.0.2', port: closedPort }]),
    ]);
    await eventually(
      'v1 to serve again',
      async () => ((await get(GW, port, '/status/200', HOST)).header('x-instance') === 'httpbin-v1' ? true : undefined),
      5000,
    );
  });

  test('a listener added and removed on the fly', async () => {
    const extra = await freePort();
    const rc = routeConfig(`http.${extra}`, [{ name: 'x:80', domains: ['*'], routes: [istioRoute('/', HTTPBIN)] }]);
    ads.set(ROUTE_TYPE, [routes(), rc]);
    ads.set(LISTENER_TYPE, [gatewayListener(port), gatewayListener(extra)]);
    const r = await eventually('the new listener to serve', async () => {
      try {
        const res = await get(GW, extra, '/x', 'any');
        return res.status === 200 ? res : undefined;
      } catch {
        return undefined;
      }
    });
    assert.equal(r.header('server'), 'istio-envoy');
    assert.match((await admin('/listeners')).body.toString(), new RegExp(`^0\\.0\\.0\\.0_${extra}::0\\.0\\.0\\.0:${extra}$`, 'm'));
    ads.set(LISTENER_TYPE, [gatewayListener(port)]);
    await eventually('the removed listener to stop accepting', async () => {
      try {
        await get(GW, extra, '/x', 'any');
        return undefined;
      } catch {
        return true;
      }
    });
    assert.equal((await get(GW, port, '/status/200', HOST)).status, 200);
    assert.doesNotMatch((await admin('/listeners')).body.toString(), new RegExp(`_${extra}::`));
  });

  test('bad resources are NACKed with a message naming them; the last good config keeps serving', async () => {
    const bad = routeConfig(`http.${port}`, [
      { name: `${HOST}:80`, domains: [HOST], routes: [{ match: { safe_regex: { regex: '(unclosed' } }, route: { cluster: HTTPBIN } }] },
    ]);
    const nacksBefore = ads.requestsOf(ROUTE_TYPE).filter((r) => r.error_detail).length;
    ads.set(ROUTE_TYPE, [bad]);
    const nack = await eventually('an RDS NACK', () => ads.requestsOf(ROUTE_TYPE).filter((r) => r.error_detail)[nacksBefore]);
    assert.match(nack.error_detail?.message ?? '', new RegExp(`route configuration 'http\\.${port}'.*invalid regex '\\(unclosed'`));
    assert.equal((await get(GW, port, '/status/200', HOST)).status, 200, 'old routes still serve');

    const cdsRejected = await stat('cluster_manager.cds.update_rejected');
    ads.set(CLUSTER_TYPE, [
      edsCluster(HTTPBIN),
      edsCluster(EMPTY),
      edsCluster(REFUSED),
      edsCluster('outbound|1||ring.default.svc.cluster.local', { lb_policy: 'CLUSTER_PROVIDED' }),
    ]);
    await eventually('a CDS NACK', async () => ((await stat('cluster_manager.cds.update_rejected')) > cdsRejected ? true : undefined));
    const cdsNack = ads
      .requestsOf(CLUSTER_TYPE)
      .filter((r) => r.error_detail)
      .at(-1);
    assert.match(
      cdsNack?.error_detail?.message ?? '',
      /cluster 'outbound\|1\|\|ring\.default\.svc\.cluster\.local': lb_policy CLUSTER_PROVIDED is not supported/,
    );

    const lds = gatewayListener(port, {
      extraHcm: {
        http_filters: [
          { name: 'envoy.filters.http.lua', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy' } },
          { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
        ],
      },
    });
    const ldsRejected = await stat('listener_manager.lds.update_rejected');
    ads.set(LISTENER_TYPE, [lds]);
    await eventually('an LDS NACK', async () => ((await stat('listener_manager.lds.update_rejected')) > ldsRejected ? true : undefined));
    assert.match(
      ads
        .requestsOf(LISTENER_TYPE)
        .filter((r) => r.error_detail)
        .at(-1)?.error_detail?.message ?? '',
      new RegExp(`listener '0\\.0\\.0\\.0_${port}'.*HTTP filter 'envoy\\.filters\\.http\\.lua'.*is not supported`),
    );
    assert.equal((await get(GW, port, '/status/200', HOST)).status, 200, 'the old listener still serves');
    ads.set(LISTENER_TYPE, [gatewayListener(port)]);
    ads.set(ROUTE_TYPE, [routes()]);
    ads.set(CLUSTER_TYPE, [edsCluster(HTTPBIN), edsCluster(EMPTY), edsCluster(REFUSED)]);
  });

  test('the ADS stream reconnects and later pushes apply', async () => {
    ads.dropStreams();
    await eventually('a reconnect', () => (ads.requests.filter((r) => r.node !== undefined).length >= 2 ? true : undefined), 10_000, 50);
    ads.set(ROUTE_TYPE, [
      routeConfig(`http.${port}`, [
        {
          name: `${HOST}:80`,
          domains: [HOST],
          routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'after reconnect' } } }],
        },
      ]),
    ]);
    await eventually('the new routes', async () => ((await get(GW, port, '/status/200', HOST)).body.toString() === 'after reconnect' ? true : undefined), 5000);
    ads.set(ROUTE_TYPE, [routes()]);
    await eventually(
      'the routes back',
      async () =>
        (await get(GW, port, '/status/200', HOST)).status === 200 && (await get(GW, port, '/status/200', HOST)).header('x-instance') ? true : undefined,
      5000,
    );
  });

  describe('admin, readiness and Prometheus endpoints', () => {
    test('/listeners: static 15090/15021 equivalents then 0.0.0.0_<port>; json form', async () => {
      const r = await admin('/listeners');
      assert.equal(r.header('content-type'), 'text/plain; charset=UTF-8');
      assert.deepEqual(headerNames(r), ['content-type', 'cache-control', 'x-content-type-options', 'date', 'server', 'transfer-encoding']);
      const lines = r.body.toString().trim().split('\n');
      assert.equal(lines.at(-1), `0.0.0.0_${port}::0.0.0.0:${port}`);
      assert.equal(lines[0], `0.0.0.0_${proxy.ports.metrics}::0.0.0.0:${proxy.ports.metrics}`);
      const j = JSON.parse((await admin('/listeners?format=json')).body.toString()) as { listener_statuses: { name: string; local_address: unknown }[] };
      assert.deepEqual(j.listener_statuses.at(-1), { name: `0.0.0.0_${port}`, local_address: { socket_address: { address: '0.0.0.0', port_value: port } } });
    });

    test('/clusters: Istio static clusters and per-host lines', async () => {
      const text = (await admin('/clusters')).body.toString();
      for (const c of ['agent', 'prometheus_stats', 'xds-grpc', 'sds-grpc']) assert.match(text, new RegExp(`^${c}::observability_name::${c}$`, 'm'));
      const p = HTTPBIN.replace(/[.|]/g, '\\$&');
      assert.match(text, new RegExp(`^${p}::observability_name::${p};$`, 'm'));
      assert.match(text, new RegExp(`^${p}::default_priority::max_connections::4294967295$`, 'm'));
      assert.match(text, new RegExp(`^${p}::added_via_api::true$`, 'm'));
      assert.match(text, new RegExp(`^${p}::127\\.0\\.0\\.2:${v1.port}::rq_total::\\d+$`, 'm'));
      const j = JSON.parse((await admin('/clusters?format=json')).body.toString()) as { cluster_statuses: { name: string }[] };
      assert.ok(j.cluster_statuses.some((c) => c.name === HTTPBIN));
    });

    test('/config_dump: Envoy dump types in order, dynamic resources with versions, include_eds, resource=', async () => {
      const r = await admin('/config_dump');
      assert.equal(r.header('content-type'), 'application/json');
      const d = JSON.parse(r.body.toString()) as { configs: Record<string, unknown>[] };
      assert.deepEqual(
        d.configs.map((c) => c['@type']),
        ['Bootstrap', 'Clusters', 'Listeners', 'ScopedRoutes', 'Routes', 'Secrets'].map((t) => `type.googleapis.com/envoy.admin.v3.${t}ConfigDump`),
      );
      const clusters = d.configs[1] as {
        version_info: string;
        dynamic_active_clusters: { version_info: string; cluster: Record<string, unknown>; last_updated: string }[];
        static_clusters: unknown[];
      };
      assert.match(clusters.version_info, /^v\d+$/);
      const hb = clusters.dynamic_active_clusters.find((c) => c.cluster.name === HTTPBIN);
      assert.equal(hb?.cluster['@type'], 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
      assert.equal(hb?.cluster.type, 'EDS');
      assert.equal(clusters.static_clusters.length, 4);
      const listeners = d.configs[2] as { dynamic_listeners: { name: string; active_state: { listener: { name: string } } }[] };
      assert.equal(listeners.dynamic_listeners[0]?.active_state.listener.name, `0.0.0.0_${port}`);
      const routesDump = d.configs[4] as { dynamic_route_configs: { route_config: { name: string } }[] };
      assert.equal(routesDump.dynamic_route_configs[0]?.route_config.name, `http.${port}`);
      assert.ok(r.body.toString().startsWith('{\n "configs": [\n  {\n   "@type"'), '1-space indentation as protobuf prints it');
      const eds = JSON.parse((await admin('/config_dump?include_eds')).body.toString()) as { configs: Record<string, unknown>[] };
      assert.equal(eds.configs[2]?.['@type'], 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump');
      const res = JSON.parse((await admin('/config_dump?resource=dynamic_active_clusters&name_regex=.*httpbin.*')).body.toString()) as {
        configs: Record<string, unknown>[];
      };
      assert.ok(res.configs.length >= 1);
      assert.equal(res.configs[0]?.['@type'], 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster');
      const notRepeated = await admin('/config_dump?resource=version_info');
      assert.equal(notRepeated.status, 400);
      assert.equal(notRepeated.body.toString(), 'version_info is not a repeated field. Use ?mask=version_info to get only this field');
    });

    test('/stats: Envoy names with values; usedonly and filter as pilot-agent queries them', async () => {
      await get(GW, port, '/status/200', HOST);
      const text = (await admin('/stats')).body.toString();
      assert.match(text, /^cluster_manager\.active_clusters: 7$/m);
      assert.match(text, /^listener_manager\.total_listeners_active: 3$/m);
      assert.match(text, new RegExp(`^http\\.outbound_0\\.0\\.0\\.0_${port};\\.downstream_rq_2xx: [1-9]\\d*$`, 'm'));
      assert.match(text, new RegExp(`^http\\.outbound_0\\.0\\.0\\.0_${port};\\.downstream_rq_4xx: [1-9]\\d*$`, 'm'));
      assert.match(text, new RegExp(`^cluster\\.${HTTPBIN.replace(/[.|]/g, '\\$&')};\\.upstream_rq_total: [1-9]\\d*$`, 'm'));
      assert.match(text, new RegExp(`^cluster\\.${EMPTY.replace(/[.|]/g, '\\$&')};\\.membership_healthy: 0$`, 'm'));
      const agent = (await admin('/stats?usedonly&filter=^(cluster_manager\\.cds|listener_manager\\.lds)\\.(update_success|update_rejected)$')).body.toString();
      assert.match(agent, /^cluster_manager\.cds\.update_success: [1-9]\d*$/m);
      assert.match(agent, /^listener_manager\.lds\.update_success: [1-9]\d*$/m);
      assert.equal(
        (await admin('/stats?usedonly&filter=^(server\\.state|listener_manager\\.workers_started)')).body.toString(),
        'listener_manager.workers_started: 1\nserver.state: 0\n',
      );
    });

    test('/stats/prometheus on admin and on the metrics port', async () => {
      const text = (await admin('/stats/prometheus')).body.toString();
      assert.match(text, new RegExp(`^envoy_cluster_upstream_rq\\{response_code="200",cluster_name="${HTTPBIN.replace(/[.|]/g, '\\$&')}"\\} [1-9]\\d*$`, 'm'));
      assert.match(text, /^envoy_server_live\{\} 1$/m);
      const m = await rawRequest('127.0.0.1', proxy.ports.metrics, 'GET /stats/prometheus HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(m.status, 200);
      assert.equal(m.header('server'), 'envoy');
      assert.match(m.body.toString(), /^# TYPE envoy_cluster_manager_active_clusters gauge$/m);
      assert.equal((await rawRequest('127.0.0.1', proxy.ports.metrics, 'GET /other HTTP/1.1\r\nHost: x\r\n\r\n')).status, 404);
    });

    test('/ready, 405 on GET of mutating endpoints, 404 invalid path, /server_info', async () => {
      const r = await admin('/ready');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'LIVE\n');
      const q = await admin('/quitquitquit');
      assert.equal(q.statusLine, 'HTTP/1.1 405 Method Not Allowed');
      assert.equal(q.body.toString(), 'Method GET not allowed, POST required.');
      const n = await admin('/nope');
      assert.equal(n.status, 404);
      assert.ok(n.body.toString().startsWith('invalid path. admin commands are:\n'));
      const info = JSON.parse((await admin('/server_info')).body.toString()) as { state: string; node: { id: string } };
      assert.equal(info.state, 'LIVE');
      assert.match(info.node.id, /^router~/);
    });

    test('15021 /healthz/ready: 200 with empty body and server: envoy; other paths 404', async () => {
      const r = await rawRequest('127.0.0.1', proxy.ports.status, 'GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(r.statusLine, 'HTTP/1.1 200 OK');
      assert.deepEqual(headerNames(r), ['date', 'content-length', 'x-envoy-upstream-service-time', 'server']);
      assert.equal(r.header('server'), 'envoy');
      assert.equal(r.body.length, 0);
      const n = await rawRequest('127.0.0.1', proxy.ports.status, 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(n.status, 404);
      assert.equal(n.header('server'), 'envoy');
    });

    test('/healthcheck/fail makes readiness fail; /healthcheck/ok restores it', async () => {
      assert.equal((await admin('/healthcheck/fail', 'POST')).body.toString(), 'OK\n');
      assert.equal((await admin('/ready')).body.toString(), 'DRAINING\n');
      assert.equal((await rawRequest('127.0.0.1', proxy.ports.status, 'GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\n')).status, 503);
      await admin('/healthcheck/ok', 'POST');
      assert.equal((await admin('/ready')).status, 200);
    });
  });
});

describe('proxy before any configuration', () => {
  test('15021 answers 503 until the first LDS and CDS are applied, then 200', async () => {
    const ads = new TestAdsServer();
    await ads.start();
    const proxy = await startProxy(testProxyOptions(ads));
    try {
      const probe = async (): Promise<number> => (await rawRequest('127.0.0.1', proxy.ports.status, 'GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\n')).status;
      assert.equal(await probe(), 503);
      assert.equal((await rawRequest('127.0.0.1', proxy.ports.admin, 'GET /ready HTTP/1.1\r\nHost: x\r\n\r\n')).body.toString(), 'INITIALIZING\n');
      ads.set(CLUSTER_TYPE, []);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await probe(), 503, 'CDS alone is not enough');
      ads.set(LISTENER_TYPE, []);
      await eventually('readiness', async () => ((await probe()) === 200 ? true : undefined), 5000);
      await proxy.ready;
    } finally {
      await proxy.close();
      await ads.stop();
    }
  });
});
