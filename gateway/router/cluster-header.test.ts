// Route action cluster_header through the proxy, as Envoy's pickClusterViaClusterHeader reads it: the header is
// untrusted, so only its first value names the cluster; without the header the name is empty and the cluster is
// not found (503 NC, the route's cluster_not_found_response_code), not a missing route.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { get, rawRequest } from '../../e2e/lib/http.ts';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../test/ads-server.ts';
import { assignment, edsCluster, gatewayListener, routeConfig, startEchoBackend } from '../test/fixtures.ts';
import { freePort } from '../test/raw-client.ts';

const HOST = 'pick.example.com';
const A = 'outbound|80||a.default.svc.cluster.local';
const B = 'outbound|80||b.default.svc.cluster.local';

describe('cluster_header', () => {
  const ads = new TestAdsServer();
  let proxy: Proxy;
  let port = 0;
  const backends: Awaited<ReturnType<typeof startEchoBackend>>[] = [];

  before(async () => {
    await ads.start();
    port = await freePort();
    backends.push(await startEchoBackend('127.0.0.1', 'a'), await startEchoBackend('127.0.0.1', 'b'));
    ads.set(CLUSTER_TYPE, [edsCluster(A), edsCluster(B)]);
    ads.set(ENDPOINT_TYPE, [
      assignment(A, [{ ip: '127.0.0.1', port: backends[0]?.port ?? 0 }]),
      assignment(B, [{ ip: '127.0.0.1', port: backends[1]?.port ?? 0 }]),
    ]);
    ads.set(LISTENER_TYPE, [gatewayListener(port)]);
    ads.set(ROUTE_TYPE, [
      routeConfig(`http.${port}`, [{ name: HOST, domains: [HOST], routes: [{ match: { prefix: '/' }, route: { cluster_header: 'X-Cluster' } }] }]),
    ]);
    proxy = await startTestProxy(ads);
  });

  after(async () => {
    await proxy?.close();
    await ads.stop();
    for (const b of backends) {
      b.server.close();
      b.server.closeAllConnections();
    }
  });

  test('the header names the cluster', async () => {
    assert.equal((await get('127.0.0.1', port, '/', HOST, { 'x-cluster': B })).header('x-instance'), 'b');
  });

  test('repeated: the first value wins', async () => {
    const raw = `GET / HTTP/1.1\r\nHost: ${HOST}\r\nX-Cluster: ${A}\r\nX-Cluster: ${B}\r\n\r\n`;
    assert.equal((await rawRequest('127.0.0.1', port, raw)).header('x-instance'), 'a');
    const swapped = `GET / HTTP/1.1\r\nHost: ${HOST}\r\nX-Cluster: ${B}\r\nX-Cluster: ${A}\r\n\r\n`;
    assert.equal((await rawRequest('127.0.0.1', port, swapped)).header('x-instance'), 'b');
  });

  test('absent: no cluster, 503 (cluster not found), not 404', async () => {
    const r = await get('127.0.0.1', port, '/', HOST);
    assert.equal(r.statusLine, 'HTTP/1.1 503 Service Unavailable');
  });

  test('unknown cluster: 503', async () => {
    assert.equal((await get('127.0.0.1', port, '/', HOST, { 'x-cluster': 'nope' })).statusLine, 'HTTP/1.1 503 Service Unavailable');
  });
});
