// Request trailers on the HTTP/2 downstream path, through a real proxy to a real h2c backend: they follow the body
// to an HTTP/2 cluster (again on a retry and on a mirror), and a trailer block over max_headers_count resets the
// client's stream with INTERNAL_ERROR and the upstream request with it, never letting it complete.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, constants, createServer as createH2Server, type Http2Server, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../test/ads-server.ts';
import { assignment, edsCluster, eventually, gatewayListener, istioRoute, routeConfig } from '../test/fixtures.ts';
import { freePort } from '../test/raw-client.ts';

const HOST = 'trailers.test';
const H2 = 'outbound|9000||grpc.default.svc.cluster.local';

/** One request as the backend saw it end: a stream the proxy reset has `rst`. */
interface Seen {
  path: string;
  body: string;
  trailers: string[] | null;
  rst?: number;
}

describe('HTTP/2 request trailers through the proxy', () => {
  const ads = new TestAdsServer();
  const seen: Seen[] = [];
  let proxy: Proxy;
  let port = 0;
  let backend: Http2Server;

  before(async () => {
    await ads.start();
    backend = createH2Server();
    backend.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      const chunks: Buffer[] = [];
      let trailers: string[] | null = null;
      stream.on('trailers', (_t: IncomingHttpHeaders, _f: number, raw: string[]) => (trailers = raw));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const path = String(headers[':path']);
        // node also ends the readable side of a stream reset by its peer: rstCode tells them apart.
        const rst = stream.rstCode;
        seen.push({ path, body: Buffer.concat(chunks).toString(), trailers, ...(rst ? { rst } : {}) });
        if (rst) return;
        const retry = path.startsWith('/retry') && seen.filter((s) => s.path === path).length === 1;
        stream.respond({ ':status': retry ? 503 : 200 });
        stream.end();
      });
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.5', () => r()));
    port = await freePort();
    const h2Options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
    ads.set(CLUSTER_TYPE, [edsCluster(H2, { typed_extension_protocol_options: h2Options })]);
    ads.set(ENDPOINT_TYPE, [assignment(H2, [{ ip: '127.0.0.5', port: (backend.address() as AddressInfo).port }])]);
    ads.set(LISTENER_TYPE, [gatewayListener(port)]);
    const mirror = { cluster: H2, runtime_fraction: { default_value: { numerator: 100 } }, disable_shadow_host_suffix_append: true };
    ads.set(ROUTE_TYPE, [
      routeConfig(`http.${port}`, [
        {
          name: `${HOST}:80`,
          domains: [HOST],
          routes: [
            istioRoute('/mirror', H2, {}, { request_mirror_policies: [mirror] }),
            istioRoute('/', H2, {}, { retry_policy: { retry_on: '5xx', num_retries: 1 } }),
          ],
        },
      ]),
    ]);
    proxy = await startTestProxy(ads, {});
  });

  after(async () => {
    await proxy?.close();
    await ads.stop();
    backend?.close();
  });

  /** A POST over h2c: `body`, then `trailers`; the status (0 when reset) and the stream's reset code. */
  async function post(path: string, body: string, trailers: Record<string, string>): Promise<{ status: number; rst: number | undefined }> {
    const session = h2connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      return await new Promise((resolve) => {
        const req = session.request({ ':method': 'POST', ':path': path, ':authority': HOST }, { waitForTrailers: true });
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', () => undefined);
        req.on('error', () => undefined);
        req.on('wantTrailers', () => req.sendTrailers(trailers));
        req.on('close', () => resolve({ status, rst: req.rstCode }));
        req.setTimeout(5000, () => req.close());
        req.end(body);
      });
    } finally {
      session.close();
    }
  }

  const at = (path: string): Seen[] => seen.filter((s) => s.path === path);

  test('the trailers follow the body to an HTTP/2 cluster, and again on a retry and on a mirror', async () => {
    assert.equal((await post('/plain', 'hello', { 'x-sum': 'abc' })).status, 200);
    assert.deepEqual(at('/plain'), [{ path: '/plain', body: 'hello', trailers: ['x-sum', 'abc'] }]);
    assert.equal((await post('/retry', 'again', { 'x-sum': 'def' })).status, 200);
    assert.deepEqual(at('/retry'), [
      { path: '/retry', body: 'again', trailers: ['x-sum', 'def'] },
      { path: '/retry', body: 'again', trailers: ['x-sum', 'def'] },
    ]);
    assert.equal((await post('/mirror', 'copy', { 'x-sum': 'ghi' })).status, 200);
    const both = await eventually('the mirrored request', () => (at('/mirror').length === 2 ? at('/mirror') : undefined));
    assert.deepEqual(both, [
      { path: '/mirror', body: 'copy', trailers: ['x-sum', 'ghi'] },
      { path: '/mirror', body: 'copy', trailers: ['x-sum', 'ghi'] },
    ]);
  });

  test('101 trailers (max_headers_count 100): INTERNAL_ERROR to the client, and the upstream request is reset, never completed', async () => {
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`x-t-${i}`, 'v']));
    for (let i = 0; i < 10; i++) {
      const r = await post(`/over/${i}`, 'body', many);
      assert.deepEqual(r, { status: 0, rst: constants.NGHTTP2_INTERNAL_ERROR });
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const s of seen.filter((x) => x.path.startsWith('/over/'))) assert.ok(s.rst !== undefined && s.trailers === null, JSON.stringify(s));
  });
});
