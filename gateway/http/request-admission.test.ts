// The rules every downstream path applies before routing (request-admission.ts), through real sockets on both
// paths (the fast path and node:http), against a real backend that records what reached it: Envoy's answer for
// each hostile head, and nothing upstream for a request the gateway refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../test/ads-server.ts';
import { HTTPBIN, assignment, edsCluster, gatewayListener, istioRoute, routeConfig, startEchoBackend, type Echo } from '../test/fixtures.ts';
import { exchange, freePort } from '../test/raw-client.ts';
import { FAULT_TYPE } from '../router/fault-config.ts';

const HOST = 'admission.test';

const statuses = (bytes: string): number[] => [...bytes.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

interface Case {
  name: string;
  raw: string;
  /** Status lines the client gets, in order. */
  want: number[];
  /** The connection is closed after them. */
  closed: boolean;
  /** What the backend received (method + url per request), in order. */
  upstream: string[];
  /** Body of the (first) reply. */
  body?: string;
  /** Something else the answer must contain. */
  match?: RegExp;
}

const CASES: Case[] = [
  {
    name: 'exact-path rule: /secret#x is /secret (fragment stripped before routing)',
    raw: `GET /secret#x HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    want: [403],
    closed: false,
    upstream: [],
  },
  {
    name: 'regex rule: /rx/secret#frag is matched without the fragment',
    raw: `GET /rx/secret#frag HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    want: [403],
    closed: false,
    upstream: [],
  },
  {
    name: 'the fragment never reaches the backend, the query does',
    raw: `GET /echo?a=1#frag HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    want: [200],
    closed: false,
    upstream: ['GET /echo?a=1'],
  },
  {
    name: 'Transfer-Encoding: identity is 501 and nothing goes upstream',
    raw: `GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: identity\r\n\r\n`,
    want: [501],
    closed: true,
    upstream: [],
    body: 'Not Implemented',
  },
  {
    name: 'Transfer-Encoding: xchunked is 501',
    raw: `POST /echo HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    want: [501],
    closed: true,
    upstream: [],
  },
  {
    name: 'Transfer-Encoding: chunked;q=1 is 501',
    raw: `POST /echo HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked;q=1\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    want: [501],
    closed: true,
    upstream: [],
  },
  {
    name: 'Transfer-Encoding: gzip, chunked is 501',
    raw: `POST /echo HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    want: [501],
    closed: true,
    upstream: [],
  },
  {
    name: 'Transfer-Encoding: Chunked (case-insensitive) is served',
    raw: `POST /echo HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    want: [200],
    closed: false,
    upstream: ['POST /echo'],
  },
  {
    name: 'https:// absolute-form on a plaintext listener is 403 (validate_scheme)',
    raw: `GET https://${HOST}/echo HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    want: [403],
    closed: true,
    upstream: [],
    body: 'Forbidden',
  },
  {
    name: 'http:// absolute-form takes :authority from the URL',
    raw: `GET http://${HOST}/echo#f HTTP/1.1\r\nHost: other.test\r\n\r\n`,
    want: [200],
    closed: false,
    upstream: ['GET /echo'],
  },
  {
    name: 'ftp:// absolute-form is 400 (invalid scheme)',
    raw: `GET ftp://${HOST}/echo HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    want: [400],
    closed: true,
    upstream: [],
  },
  { name: 'OPTIONS * is 404 (only relative paths are routed)', raw: `OPTIONS * HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, want: [404], closed: false, upstream: [] },
  {
    name: 'a target that is neither origin- nor absolute-form is 400',
    raw: `GET echo HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    want: [400],
    closed: true,
    upstream: [],
  },
  {
    // The backend (node:http) answers 417 itself without recording: the answer must be its, proxied.
    name: 'Expect: foo is proxied as an ordinary header (the gateway does not answer 417 itself)',
    raw: `GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nExpect: foo\r\n\r\n`,
    want: [417],
    closed: false,
    upstream: [],
    match: /\r\nx-envoy-upstream-service-time: \d+\r\n/,
  },
  {
    name: 'CONNECT, an upgrade Istio does not enable: 403 upgrade_failed',
    raw: `CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`,
    want: [403],
    closed: true,
    upstream: [],
  },
  {
    name: 'an upgrade type nobody enables is 403 even with no route',
    raw: `GET /echo HTTP/1.1\r\nHost: nowhere.test\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n`,
    want: [403],
    closed: true,
    upstream: [],
  },
  {
    name: "a websocket upgrade with no route is the router's 404",
    raw: `GET /echo HTTP/1.1\r\nHost: nowhere.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
    want: [404],
    closed: true,
    upstream: [],
  },
  {
    name: 'nothing pipelined after a request with Connection: close is served',
    raw: `GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\nGET /echo?second HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    want: [200],
    closed: true,
    upstream: ['GET /echo'],
  },
  {
    name: 'an upgrade pipelined after a request with Connection: close is never served',
    raw: `GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\nGET /ws HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
    want: [200],
    closed: true,
    upstream: ['GET /echo'],
  },
  {
    name: 'a refused request pipelined after a served one: the first is answered whole, then the refusal',
    raw: `GET /echo HTTP/1.1\r\nHost: ${HOST}\r\n\r\nGET /echo HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: identity\r\n\r\nGET /echo HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    want: [200, 501],
    closed: true,
    upstream: ['GET /echo'],
  },
];

for (const fastPath of [true, false]) {
  describe(`request admission (${fastPath ? 'fast path' : 'node:http'})`, () => {
    let ads: TestAdsServer;
    let proxy: Proxy;
    let port: number;
    let backend: Awaited<ReturnType<typeof startEchoBackend>>;

    before(async () => {
      backend = await startEchoBackend('127.0.0.2', 'echo');
      ads = new TestAdsServer();
      await ads.start();
      port = await freePort();
      const denied = { status: 403, body: { inline_string: 'denied' } };
      ads.set(CLUSTER_TYPE, [edsCluster(HTTPBIN)]);
      ads.set(ENDPOINT_TYPE, [assignment(HTTPBIN, [{ ip: '127.0.0.2', port: backend.port }])]);
      ads.set(LISTENER_TYPE, [gatewayListener(port)]);
      ads.set(ROUTE_TYPE, [
        routeConfig(`http.${port}`, [
          {
            name: `${HOST}:80`,
            domains: [HOST, `${HOST}:80`],
            routes: [
              { match: { path: '/secret' }, direct_response: denied },
              { match: { safe_regex: { regex: '/rx/[a-z]+' } }, direct_response: denied },
              istioRoute('/delayed', HTTPBIN, {
                typed_per_filter_config: {
                  'envoy.filters.http.fault': { '@type': `type.googleapis.com/${FAULT_TYPE}`, delay: { fixed_delay: '0.3s', percentage: { numerator: 100 } } },
                },
              }),
              {
                match: { prefix: '/utf8', headers: [{ name: 'x-who', string_match: { exact: 'café' } }] },
                direct_response: { status: 200, body: { inline_string: 'matched' } },
              },
              istioRoute('/', HTTPBIN, {
                request_headers_to_add: [{ header: { key: 'x-added', value: 'café' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
              }),
            ],
          },
        ]),
      ]);
      proxy = await startTestProxy(ads, { fastPath });
    });

    after(async () => {
      await proxy?.close();
      await ads?.stop();
      backend?.server.close();
      backend?.server.closeAllConnections();
    });

    const seenSince = (n: number): Echo[] => backend.seen.slice(n);

    for (const c of CASES) {
      test(c.name, async () => {
        const before = backend.seen.length;
        const r = await exchange(port, [c.raw], { idleMs: 400 });
        assert.deepEqual(statuses(r.bytes), c.want, r.bytes);
        assert.equal(r.closed, c.closed, `closed: ${r.bytes}`);
        if (c.body !== undefined) assert.ok(r.bytes.endsWith(`\r\n\r\n${c.body}`), r.bytes);
        if (c.match) assert.match(r.bytes, c.match);
        assert.match(r.bytes, /\r\nserver: istio-envoy\r\n/);
        // Nothing the gateway refused reached the backend, and nothing else either.
        await new Promise((res) => setTimeout(res, 50));
        assert.deepEqual(
          seenSince(before).map((e) => `${e.method} ${e.url}`),
          c.upstream,
        );
      });
    }

    test('a forged x-forwarded-client-cert on a plaintext connection never reaches the backend (SANITIZE_SET)', async () => {
      const before = backend.seen.length;
      const r = await exchange(port, [`GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nX-Forwarded-Client-Cert: By=spiffe://forged;Hash=00\r\n\r\n`], { idleMs: 400 });
      assert.deepEqual(statuses(r.bytes), [200]);
      const got = seenSince(before)[0] as Echo;
      assert.ok(!got.rawHeaders.some((h) => h.toLowerCase() === 'x-forwarded-client-cert'), JSON.stringify(got.rawHeaders));
    });

    test('non-ASCII header bytes reach the backend unchanged (latin1 and UTF-8 alike)', async () => {
      const before = backend.seen.length;
      const head = Buffer.concat([
        Buffer.from(`GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nX-Latin1: caf`, 'latin1'),
        Buffer.from([0xe9]),
        Buffer.from('\r\nX-Utf8: caf', 'latin1'),
        Buffer.from([0xc3, 0xa9]),
        Buffer.from('\r\n\r\n', 'latin1'),
      ]);
      const r = await exchange(port, [head], { idleMs: 400 });
      assert.deepEqual(statuses(r.bytes), [200]);
      const got = seenSince(before)[0] as Echo;
      // node:http on the backend decodes header bytes as latin1: one char per byte received.
      const value = (name: string): string | undefined => got.rawHeaders[got.rawHeaders.findIndex((h) => h.toLowerCase() === name) + 1];
      assert.equal(value('x-latin1'), 'caf\xe9');
      assert.equal(value('x-utf8'), 'caf\xc3\xa9');
      // A value from config goes out as its UTF-8 bytes, as Envoy sends the proto string.
      assert.equal(value('x-added'), 'caf\xc3\xa9');
    });

    test('a header matcher from config compares the UTF-8 bytes of its value', async () => {
      const ask = (value: Buffer): Promise<{ bytes: string }> =>
        exchange(
          port,
          [Buffer.concat([Buffer.from(`GET /utf8 HTTP/1.1\r\nHost: ${HOST}\r\nX-Who: caf`, 'latin1'), value, Buffer.from('\r\n\r\n', 'latin1')])],
          { idleMs: 400 },
        );
      assert.ok((await ask(Buffer.from([0xc3, 0xa9]))).bytes.endsWith('\r\n\r\nmatched'));
      assert.ok(!(await ask(Buffer.from([0xe9]))).bytes.endsWith('\r\n\r\nmatched'));
    });

    test('a POST on a route with a fault delay: the body that arrives during the delay reaches the backend', async () => {
      const before = backend.seen.length;
      const r = await exchange(port, [`POST /delayed HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 5\r\n\r\n`, 'hel', 'lo'], { idleMs: 1000, gapMs: 50 });
      assert.deepEqual(statuses(r.bytes), [200], r.bytes);
      const got = seenSince(before)[0] as Echo;
      assert.equal(got.body, 'hello');
    });

    test('a chunked POST during a fault delay arrives whole and the connection serves the next request', async () => {
      const before = backend.seen.length;
      const r = await exchange(
        port,
        [
          `POST /delayed HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n`,
          '3\r\nabc\r\n',
          '2\r\nde\r\n0\r\n\r\n',
          `GET /echo HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
        ],
        { idleMs: 1000, gapMs: 50 },
      );
      assert.deepEqual(statuses(r.bytes), [200, 200], r.bytes);
      assert.deepEqual(
        seenSince(before).map((e) => e.body.slice(0, 5)),
        ['abcde', ''],
      );
    });

    test('forty requests pipelined in one write are all answered in order, then the connection serves more', async () => {
      const before = backend.seen.length;
      const batch = Array.from({ length: 40 }, (_, i) => `GET /echo?n=${i} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`).join('');
      const r = await exchange(port, [batch, `GET /echo?n=last HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`], { idleMs: 1000, gapMs: 1000 });
      assert.equal(statuses(r.bytes).length, 41, r.bytes.slice(-300));
      assert.deepEqual(
        seenSince(before).map((e) => e.url),
        [...Array.from({ length: 40 }, (_, i) => `/echo?n=${i}`), '/echo?n=last'],
      );
    });

    test('a head trickled one byte at a time is served', async () => {
      const raw = `GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nX-A: ${'a'.repeat(200)}\r\n\r\n`;
      const r = await exchange(
        port,
        [...raw].map((ch) => Buffer.from(ch, 'latin1')),
        { idleMs: 600, gapMs: 1 },
      );
      assert.deepEqual(statuses(r.bytes), [200], r.bytes);
    });
  });
}
