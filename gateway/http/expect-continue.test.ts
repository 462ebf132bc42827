// `Expect: 100-continue` through the proxy, on the fast path and on the general (node:http) path, with a real
// client (node's http.request waiting for 'continue' before it sends the body) and a raw backend that sends its
// own `100 Continue`. With the HCM's proxy_100_continue (istiod sets it on gateways) Expect goes upstream and
// the upstream's 100 is relayed; without it (Envoy's default) the proxy answers 100 itself, removes Expect and
// swallows any 100 the upstream sends.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { rawRequest } from '../../e2e/lib/http.ts';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../test/ads-server.ts';
import { HTTPBIN, assignment, edsCluster, eventually, gatewayListener, istioRoute, routeConfig } from '../test/fixtures.ts';
import { freePort } from '../test/raw-client.ts';

const HOST = 'httpbin.example.com';

/** A request head as the backend read it. */
interface Seen {
  path: string;
  expect: string | undefined;
}

/**
 * The backend. /echo: `100 Continue` (with a header of its own) when the request expects it, then 200 with the
 * body. /refuse: 417 at once, the body never read. /unsolicited: `100 Continue` whether asked or not, then 200.
 */
async function startBackend(): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((s: Socket) => {
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let want = -1;
    let path = '';
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (want < 0) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
          buf = buf.subarray(end + 4);
          path = (lines[0] ?? '').split(' ')[1] ?? '';
          const header = (n: string): string | undefined =>
            lines
              .slice(1)
              .find((l) => l.toLowerCase().startsWith(`${n}:`))
              ?.slice(n.length + 1)
              .trim();
          seen.push({ path, expect: header('expect') });
          if (path === '/refuse') {
            s.end('HTTP/1.1 417 Expectation Failed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
            return;
          }
          want = Number(header('content-length') ?? '0');
          if (header('expect') !== undefined || path === '/unsolicited') s.write('HTTP/1.1 100 Continue\r\nx-upstream-100: yes\r\n\r\n');
        }
        if (buf.length < want) return;
        const body = buf.subarray(0, want).toString();
        buf = buf.subarray(want);
        want = -1;
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-path: ${path}\r\n\r\n${body}`);
      }
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  return { server, port, seen };
}

interface Exchange {
  /** Interim answers the client saw, in order. */
  interim: { status: number; headers: Record<string, unknown> }[];
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

/** A node client that sends the body only once it has had `100 Continue` (no timeout fallback). */
function send(port: number, path: string, body: string, host = HOST): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const interim: Exchange['interim'] = [];
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      method: 'POST',
      agent: false,
      headers: { host, 'content-length': Buffer.byteLength(body), expect: '100-continue' },
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer to ${path} in 5 s (interim: ${JSON.stringify(interim)})`));
    }, 5000);
    req.on('information', (i) => interim.push({ status: i.statusCode, headers: i.headers }));
    req.on('continue', () => req.end(body));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ interim, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() });
      });
    });
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.flushHeaders();
  });
}

for (const fastPath of [true, false]) {
  describe(`Expect: 100-continue on the ${fastPath ? 'fast' : 'general (node:http)'} path`, () => {
    const ads = new TestAdsServer();
    let proxy: Proxy;
    let backend: Awaited<ReturnType<typeof startBackend>>;
    let relay = 0; // listener with proxy_100_continue: true
    let answer = 0; // listener without it
    const stat = async (name: string): Promise<number> => {
      const path = `/stats?filter=${encodeURIComponent(`^${name.replace(/[.|;]/g, '\\$&')}$`)}`;
      const text = (await rawRequest('127.0.0.1', proxy.ports.admin, `GET ${path} HTTP/1.1\r\nHost: admin\r\n\r\n`)).body.toString();
      return Number(/: (\d+)\n$/.exec(text)?.[1] ?? 0);
    };
    const rq1xx = (): Promise<number> => stat(`http.outbound_0.0.0.0_${answer};.downstream_rq_1xx`);

    before(async () => {
      await ads.start();
      backend = await startBackend();
      relay = await freePort();
      answer = await freePort();
      ads.set(CLUSTER_TYPE, [edsCluster(HTTPBIN)]);
      ads.set(ENDPOINT_TYPE, [assignment(HTTPBIN, [{ ip: '127.0.0.1', port: backend.port }])]);
      ads.set(LISTENER_TYPE, [gatewayListener(relay, { extraHcm: { proxy_100_continue: true } }), gatewayListener(answer)]);
      const routes = [istioRoute('/', HTTPBIN)];
      ads.set(ROUTE_TYPE, [
        routeConfig(`http.${relay}`, [{ name: `${HOST}:80`, domains: [HOST], routes }]),
        routeConfig(`http.${answer}`, [{ name: `${HOST}:80`, domains: [HOST], routes }]),
      ]);
      proxy = await startTestProxy(ads, { fastPath });
      await eventually('both listeners', async () =>
        (await send(answer, '/echo', 'x')).status === 200 && (await send(relay, '/echo', 'x')).status === 200 ? true : undefined,
      );
    });

    after(async () => {
      await proxy?.close();
      await ads.stop();
      backend?.server.close();
    });

    test("proxy_100_continue: Expect goes upstream, the upstream's 100 reaches the client, then the answer", async () => {
      const before = backend.seen.length;
      const r = await send(relay, '/echo', 'hello');
      assert.deepEqual(backend.seen.slice(before), [{ path: '/echo', expect: '100-continue' }]);
      assert.deepEqual(
        r.interim.map((i) => i.status),
        [100],
      );
      // The fast path relays the interim answer's own headers; node:http writes a bare 100.
      assert.equal(r.interim[0]?.headers['x-upstream-100'], fastPath ? 'yes' : undefined);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'hello');
    });

    test('proxy_100_continue: an upstream that refuses without a 100 gives the client no 100, only its 417', async () => {
      const r = await send(relay, '/refuse', 'never sent');
      assert.deepEqual(r.interim, []);
      assert.equal(r.status, 417);
      // The request body never came: the connection closes after the answer, as Envoy's HCM closes it.
      assert.equal(r.headers.connection, 'close');
    });

    test('proxy_100_continue: a local reply comes without any 100 (only an upstream sends one)', async () => {
      const r = await send(relay, '/echo', 'abc', 'unknown.example.com');
      assert.deepEqual(r.interim, []);
      assert.equal(r.status, 404);
    });

    test('without proxy_100_continue: the proxy answers 100 itself and Expect never reaches the upstream', async () => {
      const before = backend.seen.length;
      const counted = await rq1xx();
      const r = await send(answer, '/echo', 'hello');
      assert.deepEqual(backend.seen.slice(before), [{ path: '/echo', expect: undefined }]);
      assert.deepEqual(
        r.interim.map((i) => [i.status, Object.keys(i.headers)]),
        [[100, []]],
      );
      assert.equal(r.status, 200);
      assert.equal(r.body, 'hello');
      // Counted as Envoy's chargeStats counts the 100 it sends (the final answer is counted too).
      assert.equal(await rq1xx(), counted + 1);
    });

    test("without proxy_100_continue: an upstream's unsolicited 100 is swallowed (the client sees one 100, the proxy's)", async () => {
      const r = await send(answer, '/unsolicited', 'abc');
      assert.deepEqual(
        r.interim.map((i) => [i.status, Object.keys(i.headers)]),
        [[100, []]],
      );
      assert.equal(r.status, 200);
      assert.equal(r.body, 'abc');
      assert.equal(r.headers['x-path'], '/unsolicited');
    });

    test('without proxy_100_continue: 100 first, before routing, then the local reply (404 for an unknown host)', async () => {
      const r = await send(answer, '/echo', 'abc', 'unknown.example.com');
      assert.deepEqual(
        r.interim.map((i) => i.status),
        [100],
      );
      assert.equal(r.status, 404);
    });
  });
}
