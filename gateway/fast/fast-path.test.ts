// The fast HTTP/1.1 path against the general (node:http) path: two proxies with the same xDS config, one
// with MESHGATE_FAST_PATH=0; the same bytes go to both on fresh connections and everything that comes
// back (status lines, header lines, bodies, 100 Continue, pipelined answers, whether the connection
// closed) must be identical except date / x-envoy-upstream-service-time / x-request-id values. Plus the
// head parser's own table: request-smuggling shapes are never accepted by the fast parser (the general
// path answers them), and a fast-check fuzz of generated requests through both proxies.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { Server } from 'node:http';
import fc from 'fast-check';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../test/ads-server.ts';
import { HTTPBIN, assignment, edsCluster, gatewayListener, istioRoute, routeConfig, startEchoBackend, type Echo } from '../test/fixtures.ts';
import { exchange, freePort } from '../test/raw-client.ts';
import { ChunkedDecoder, HEAD_HANDOFF, HEAD_INCOMPLETE, newRequestHead, parseRequestHead } from './request-head.ts';

const HOST = 'httpbin.example.com';
const EMPTY = 'outbound|8000|test-version|httpbin.default.svc.cluster.local';
const EARLY = 'outbound|8000||early.default.svc.cluster.local';

// ---- the head parser on its own ----

const parse = (s: string, max = 60 * 1024): number => parseRequestHead(Buffer.from(s, 'latin1'), 0, Buffer.byteLength(s, 'latin1'), max, newRequestHead());

/** Shapes the fast parser must not interpret (the general path answers them: 400 / 426 / 431 / upgrade). */
const NOT_ACCEPTED: [string, string][] = [
  ['CL.TE: Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ['TE.CL: Transfer-Encoding then Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n'],
  ['duplicate Content-Length, equal', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n'],
  ['duplicate Content-Length, different', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n'],
  ['Content-Length list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\n'],
  ['Content-Length with sign', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n'],
  ['Content-Length hex', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x4\r\n\r\n'],
  ['Transfer-Encoding: gzip, chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'],
  ['Transfer-Encoding: chunked, identity', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n'],
  ['Transfer-Encoding twice', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ['Transfer-Encoding with vertical tab', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n'],
  ['space before colon', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n'],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n'],
  ['obs-fold hiding Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n Transfer-Encoding: chunked\r\n\r\n'],
  ['bare LF line ends', 'GET / HTTP/1.1\nHost: a\n\n'],
  ['bare LF in one header line', 'GET / HTTP/1.1\r\nHost: a\nX-B: c\r\n\r\n'],
  ['bare CR', 'GET / HTTP/1.1\r\nHost: a\rX-B: c\r\n\r\n'],
  ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n'],
  ['control byte in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n'],
  ['DEL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n'],
  ['non-ASCII in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xe9\r\n\r\n'],
  ['non-token header name', 'GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n'],
  ['empty header name', 'GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n'],
  ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a\r\n\r\n'],
  ['HTTP/2.0 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
  ['lowercase version', 'GET / http/1.1\r\nHost: a\r\n\r\n'],
  ['two spaces after the method', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['absolute-form target', 'GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['asterisk target', 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['unknown method', 'BREW / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['lowercase method', 'get / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['websocket upgrade', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
  ['h2c upgrade', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n'],
  ['control byte in the target', 'GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n'],
];

describe('fast path: request-head parser', () => {
  for (const [name, raw] of NOT_ACCEPTED) {
    test(`not accepted, left to the general path: ${name}`, () => {
      assert.equal(parse(raw), HEAD_HANDOFF);
    });
  }

  test('a plain GET: method, target, raw headers as received, values trimmed', () => {
    const h = newRequestHead();
    const raw = 'GET /a?b=c HTTP/1.1\r\nHost: x.example.com\r\nX-Mixed-Case:  v  \r\nEmpty:\r\n\r\nGET';
    const n = parseRequestHead(Buffer.from(raw), 0, raw.length, 60 * 1024, h);
    assert.equal(n, raw.length - 3);
    assert.equal(h.method, 'GET');
    assert.equal(h.url, '/a?b=c');
    assert.deepEqual(h.rawHeaders, ['Host', 'x.example.com', 'X-Mixed-Case', 'v', 'Empty', '']);
    assert.equal(h.contentLength, -1);
    assert.equal(h.chunked, false);
  });

  test('framing: one Content-Length, or Transfer-Encoding: chunked in any case', () => {
    const h = newRequestHead();
    const a = 'POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 12\r\n\r\n';
    assert.equal(parseRequestHead(Buffer.from(a), 0, a.length, 60 * 1024, h), a.length);
    assert.equal(h.contentLength, 12);
    const b = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nExpect: 100-Continue\r\n\r\n';
    assert.equal(parseRequestHead(Buffer.from(b), 0, b.length, 60 * 1024, h), b.length);
    assert.equal(h.chunked, true);
  });

  test('every proper prefix of a valid head is incomplete, never an error', () => {
    const raw = 'POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nX-A: b\r\n\r\n';
    for (let k = 1; k < raw.length; k++) assert.equal(parse(raw.slice(0, k)), HEAD_INCOMPLETE, `prefix of ${k} bytes`);
    assert.equal(parse(raw), raw.length);
  });

  test('a head larger than the limit is left to the general path (431 there)', () => {
    const raw = `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`;
    assert.equal(parse(raw, 1024), HEAD_HANDOFF);
    assert.equal(parse(raw.slice(0, 1500), 1024), HEAD_HANDOFF);
    assert.equal(parse(raw, 4096), raw.length);
  });

  test('fuzz: the parser never throws and only accepts heads that end with an empty line', () => {
    const bytes = fc.uint8Array({ maxLength: 200 });
    fc.assert(
      fc.property(fc.constantFrom('GET / HTTP/1.1\r\n', 'POST /x HTTP/1.1\r\nHost: a\r\n', ''), bytes, (prefix, tail) => {
        const buf = Buffer.concat([Buffer.from(prefix), tail]);
        const n = parseRequestHead(buf, 0, buf.length, 1024, newRequestHead());
        if (n > 0) assert.equal(buf.subarray(n - 4, n).toString('latin1'), '\r\n\r\n');
        else assert.ok(n === HEAD_INCOMPLETE || n === HEAD_HANDOFF);
      }),
      { numRuns: 2000 },
    );
  });

  test('chunked decoder: sizes, extensions, trailers, split at every byte', () => {
    const body = '5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\nNEXT';
    for (let split = 1; split < body.length - 4; split++) {
      const d = new ChunkedDecoder(60 * 1024);
      const out: string[] = [];
      const buf = Buffer.from(body);
      const a = d.feed(buf.subarray(0, split), 0, split, (b) => out.push(b.toString()));
      assert.equal(a, split);
      const rest = buf.subarray(split);
      const b = d.feed(rest, 0, rest.length, (x) => out.push(x.toString()));
      assert.ok(d.done, `split ${split}`);
      assert.equal(out.join(''), 'helloabcdefghijklmnopqrstuvwxyz');
      assert.equal(rest.subarray(b).toString(), 'NEXT');
    }
  });

  const badChunks: [string, string][] = [
    ['no size', '\r\nabc\r\n0\r\n\r\n'],
    ['non-hex size', 'g\r\nabc\r\n0\r\n\r\n'],
    ['bare LF after size', '3\nabc\r\n0\r\n\r\n'],
    ['missing CRLF after data', '3\r\nabcd\r\n0\r\n\r\n'],
    ['size overflow', '1000000000000\r\n'],
    ['space before size', ' 3\r\nabc\r\n0\r\n\r\n'],
  ];
  for (const [name, raw] of badChunks) {
    test(`chunked decoder rejects: ${name}`, () => {
      const d = new ChunkedDecoder(60 * 1024);
      assert.equal(
        d.feed(Buffer.from(raw), 0, raw.length, () => undefined),
        -1,
      );
    });
  }
});

// ---- both paths side by side ----

interface Side {
  ads: TestAdsServer;
  proxy: Proxy;
  port: number;
}

/** Values that legitimately differ between two runs. */
function normalize(s: string): string {
  return s
    .replace(/^date: .*$/gim, 'date: <date>')
    .replace(/"date","[^"]*"/gi, '"date","<date>"')
    .replace(/^x-envoy-upstream-service-time: \d+$/gim, 'x-envoy-upstream-service-time: <ms>')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/"(x-forwarded-for|x-envoy-external-address)","[^"]*"/g, '"$1","<addr>"')
    .replace(/"x-instance","[^"]*"/g, '"x-instance","<i>"');
}

const CODEC_400 =
  'HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\ncontent-type: text/plain\r\ndate: <date>\r\nserver: istio-envoy\r\nconnection: close\r\n\r\nBad Request';

const chunk = (s: string): string => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;

const CASES: [string, string][] = [
  ['routed GET', `GET /status/200 HTTP/1.1\r\nHost: ${HOST}\r\nUser-Agent: t\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n`],
  ['unknown host: 404', 'GET / HTTP/1.1\r\nHost: nomatch.example.com\r\n\r\n'],
  ['no route: 404', `GET /nothing HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['no healthy upstream: 503', `GET /anything HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['direct response', `GET /down HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['redirect', `GET /old/x?q=1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['HEAD', `HEAD /status/200 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['HEAD of a local reply', `HEAD /down HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['204 from upstream', `GET /status/204 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['304 from upstream', `GET /status/304 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['chunked response from upstream', `GET /chunked HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['upstream server/date kept and rewritten', `GET /status/fine HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['POST with Content-Length', `POST /post HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 11\r\n\r\nhello world`],
  [
    'POST chunked with trailers',
    `POST /post HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('hello ')}${chunk('world')}0\r\nX-T: 1\r\n\r\n`,
  ],
  ['Expect: 100-continue', `POST /post HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc`],
  [
    'Expect: 100-Continue in another case, before a local reply',
    `POST /nothing HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc`,
  ],
  ['Expect other than 100-continue: an ordinary header', `GET /status/200 HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 200-ok\r\n\r\n`],
  [
    'Expect: 100-continue twice (joined, not 100-continue)',
    `GET /status/200 HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n\r\n`,
  ],
  [
    'pipelined GETs',
    `GET /status/1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\nGET /nothing HTTP/1.1\r\nHost: ${HOST}\r\n\r\nGET /status/3 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
  ],
  ['pipelined POST then GET', `POST /post HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 2\r\n\r\nhiGET /status/2 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['Connection: close', `GET /status/200 HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`],
  ['local reply before the body: closes', `POST /nothing HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 10\r\n\r\nabc`],
  ['upstream answer before the body: connection: close, then closed', `POST /early HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 10\r\n\r\nabc`],
  ['missing Host: 400', 'GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n'],
  ['two Host headers', `GET /status/200 HTTP/1.1\r\nHost: ${HOST}\r\nHost: other\r\n\r\n`],
  ['Host with port and upper case', `GET /status/200 HTTP/1.1\r\nHost: HTTPBIN.example.com:80\r\n\r\n`],
  ['HTTP/1.0: 426', `GET / HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`],
  ['101 headers: 431', `GET / HTTP/1.1\r\nHost: ${HOST}\r\n${Array.from({ length: 100 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`],
  ['61 KiB of headers: 431', `GET / HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${'a'.repeat(61 * 1024)}\r\n\r\n`],
  [
    'websocket upgrade on a route without websocket: served as the general path serves it',
    `GET /status/200 HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
  ],
  [
    'GET after a fast request, then an HTTP/1.0 one on the same connection',
    `GET /status/1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\nGET / HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`,
  ],
  [
    'internal headers stripped, hop-by-hop dropped',
    `GET /status/200 HTTP/1.1\r\nHost: ${HOST}\r\nX-Envoy-Retry-On: 5xx\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nTE: trailers, deflate\r\nX-Envoy-Internal: true\r\n\r\n`,
  ],
  ['path normalisation', `GET /status/../status/./a%2fb HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['query only', `GET /status?x=/../ HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ['invalid chunk size after a valid head', `POST /post HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`],
  // Request trailers are dropped, but held to the header rules and limit (max_request_headers_kb) on both paths.
  ...(
    [
      ['a 20 KiB trailer line', `x-t: ${'a'.repeat(20 * 1024)}\r\n`],
      ['a trailer line without a colon', 'nocolon\r\n'],
      ['a trailer name with a space', 'x t: 1\r\n'],
      ['whitespace before a trailer colon', 'x-t : 1\r\n'],
      ['a control character in a trailer value', 'x-t: a\x01b\r\n'],
      ['a folded trailer line', 'x-t: 1\r\n  more\r\n'],
      ['70 KiB of trailers in short lines', 'x-t: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(2300)],
    ] as const
  ).map(([name, trailers]): [string, string] => [
    `POST chunked with ${name}`,
    `POST /post HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('hello')}0\r\n${trailers}\r\n`,
  ]),
  ...NOT_ACCEPTED.map(([name, raw]): [string, string] => [`smuggling corpus: ${name}`, raw.replace(/Host: a\r\n/, `Host: ${HOST}\r\n`)]),
];

describe('fast path vs general path: byte-identical answers', () => {
  let fast: Side;
  let general: Side;
  let backend: { server: Server; port: number; seen: Echo[] };
  // Answers every request as soon as its head arrives, before reading the body, then reads and drops the rest.
  let early: NetServer;
  let earlyPort = 0;

  async function side(fastPath: boolean): Promise<Side> {
    const ads = new TestAdsServer();
    await ads.start();
    const port = await freePort();
    ads.set(CLUSTER_TYPE, [edsCluster(HTTPBIN), edsCluster(EMPTY), edsCluster(EARLY)]);
    ads.set(ENDPOINT_TYPE, [
      assignment(HTTPBIN, [{ ip: '127.0.0.2', port: backend.port }]),
      assignment(EMPTY, []),
      assignment(EARLY, [{ ip: '127.0.0.3', port: earlyPort }]),
    ]);
    ads.set(LISTENER_TYPE, [gatewayListener(port)]);
    ads.set(ROUTE_TYPE, [
      routeConfig(`http.${port}`, [
        {
          name: `${HOST}:80`,
          domains: [HOST, `${HOST}:80`],
          routes: [
            istioRoute('/status', HTTPBIN),
            istioRoute('/chunked', HTTPBIN),
            istioRoute('/anything', EMPTY),
            { match: { prefix: '/early' }, route: { cluster: EARLY, timeout: '0s' } },
            { match: { prefix: '/old' }, redirect: { path_redirect: '/new' } },
            { match: { prefix: '/down' }, direct_response: { status: 503, body: { inline_string: 'down' } } },
            { match: { prefix: '/post' }, route: { cluster: HTTPBIN, timeout: '0s' } },
          ],
        },
      ]),
    ]);
    return { ads, proxy: await startTestProxy(ads, { fastPath }), port };
  }

  before(async () => {
    backend = await startEchoBackend('127.0.0.2', 'httpbin', (req) => {
      const u = req.url ?? '';
      if (u === '/status/204') return { status: 204, headers: [], body: '' };
      if (u === '/status/304') return { status: 304, headers: ['etag', '"x"'], body: '' };
      if (u === '/chunked') return { status: 200, headers: ['content-type', 'text/plain', 'x-upstream', 'yes'], body: 'streamed body' };
      if (u === '/status/fine')
        return { status: 200, body: 'ok', headers: ['server', 'gunicorn', 'date', 'Mon, 01 Jan 2024 00:00:00 GMT', 'content-length', '2'] };
      return undefined;
    });
    early = createNetServer((sock) => {
      let answered = false;
      sock.on('data', () => {
        if (answered) return;
        answered = true;
        sock.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\n\r\nbig\n');
      });
      sock.on('error', () => undefined);
    });
    earlyPort = await new Promise<number>((resolve) => early.listen(0, '127.0.0.3', () => resolve((early.address() as { port: number }).port)));
    general = await side(false);
    fast = await side(true);
  });

  after(async () => {
    for (const s of [fast, general]) {
      await s?.proxy.close();
      await s?.ads.stop();
    }
    backend?.server.close();
    backend?.server.closeAllConnections();
    early?.close();
  });

  async function compare(raw: string, idleMs: number): Promise<{ a: string; b: string }> {
    for (let attempt = 0; ; attempt++) {
      const [g, f] = await Promise.all([exchange(general.port, [raw], { idleMs, maxMs: 4000 }), exchange(fast.port, [raw], { idleMs, maxMs: 4000 })]);
      let gBytes = normalize(g.bytes);
      let fBytes = normalize(f.bytes);
      // One known difference: after a response that closes the connection, node:http keeps parsing the bytes
      // that followed and answers a codec 400 for garbage there; Envoy (and the fast path) stop reading.
      // (node:http does it on the fast path's handed-off connections too, depending on how the bytes arrive.)
      const onlyTrailing400 = (longer: string, shorter: string): boolean =>
        g.closed &&
        f.closed &&
        longer.length > shorter.length &&
        longer.startsWith(shorter) &&
        /connection: close\r\n/.test(shorter) &&
        longer.slice(shorter.length) === CODEC_400;
      if (onlyTrailing400(gBytes, fBytes)) gBytes = fBytes;
      if (onlyTrailing400(fBytes, gBytes)) fBytes = gBytes;
      const a = gBytes + (g.closed ? '\n<closed>' : '\n<open>');
      const b = fBytes + (f.closed ? '\n<closed>' : '\n<open>');
      // A loaded machine can stretch one side past the idle window: compare again before failing.
      if (a === b || attempt === 2) return { a, b };
    }
  }

  for (const [name, raw] of CASES) {
    test(`same answer: ${name}`, async () => {
      const { a, b } = await compare(raw, 250);
      assert.notEqual(a, '\n<open>', 'the general path answered something');
      assert.equal(b, a);
    });
  }

  test('the fast path really serves plain requests (a smuggling case is answered 400 by the general path)', async () => {
    const r = await exchange(fast.port, ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'], {
      idleMs: 250,
      maxMs: 4000,
    });
    assert.match(r.bytes, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.ok(r.closed);
  });

  for (const [name, n, size] of [
    ['small', 2, 1024],
    ['256 KiB', 4, 64 * 1024],
  ] as const) {
    test(`a chunked upload (${name}) and a Content-Length one stream through both paths intact`, async () => {
      const part = 'x'.repeat(size);
      let body = '';
      for (let i = 0; i < n; i++) body += chunk(part);
      for (const port of [fast.port, general.port]) {
        for (const raw of [
          `POST /post HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n${body}0\r\n\r\n`,
          `POST /post HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${n * size}\r\n\r\n${part.repeat(n)}`,
        ]) {
          const r = await exchange(port, [raw], { idleMs: 500, maxMs: 8000 });
          assert.match(r.bytes, /^HTTP\/1\.1 200 OK\r\n/);
          const echo = JSON.parse(r.bytes.slice(r.bytes.indexOf('\r\n\r\n') + 4)) as Echo;
          assert.equal(echo.body.length, n * size);
        }
      }
    });
  }

  // Generated requests: methods, targets, header names in random case, values, framing and line endings.
  const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
  const value = fc.stringMatching(/^[\x20-\x7e\t]{0,20}$/);
  const header = fc.oneof(
    fc.tuple(token, value),
    fc.tuple(fc.constantFrom('Content-Length', 'content-length', 'CONTENT-LENGTH'), fc.constantFrom('0', '3', '03', ' 3', '3 ', '-1', '', 'abc', '3,3')),
    fc.tuple(fc.constantFrom('Transfer-Encoding', 'transfer-encoding'), fc.constantFrom('chunked', 'CHUNKED', 'gzip', 'chunked, gzip', ' chunked', 'identity')),
    fc.tuple(fc.constantFrom('Connection', 'connection'), fc.constantFrom('close', 'keep-alive', 'Upgrade', 'x, close')),
    fc.tuple(fc.constantFrom('Host', 'host'), fc.constantFrom(HOST, 'other.example.com', '', `${HOST}:80`)),
    fc.tuple(fc.constantFrom('Expect', 'X-Request-Id', 'x-forwarded-proto', 'Upgrade'), fc.constantFrom('100-continue', 'abc', 'https', 'websocket')),
  );
  const request = fc.record({
    method: fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get', 'BREW'),
    target: fc.constantFrom('/status/200', '/post', '/nothing', '/down', '/old/a', '/status/%2e%2e/x', '*', 'http://h/x', '/status/200?a=b'),
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'),
    host: fc.boolean(),
    headers: fc.array(header, { maxLength: 6 }),
    eol: fc.constantFrom('\r\n', '\r\n', '\r\n', '\n'),
    body: fc.constantFrom('', 'abc', '3\r\nabc\r\n0\r\n\r\n'),
  });

  test('fuzz: generated requests get the same answer from both paths', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const lines = [`${r.method} ${r.target} ${r.version}`];
        if (r.host) lines.push(`Host: ${HOST}`);
        for (const [n, v] of r.headers) lines.push(`${n}: ${v}`);
        // A body only behind framing headers: stray bytes after an unframed request are the next request, and
        // there node:http answers a codec error at once, dropping the response in flight, where Envoy and the
        // fast path answer in order (a known general-path difference, not compared here).
        const framed =
          (r.body === 'abc' && r.headers.some(([n, v]) => /^content-length$/i.test(n) && v.trim() === '3')) ||
          (r.body.startsWith('3\r\n') && r.headers.some(([n, v]) => /^transfer-encoding$/i.test(n) && v.trim().toLowerCase() === 'chunked'));
        const raw = lines.join(r.eol) + r.eol + r.eol + (framed ? r.body : '');
        const { a, b } = await compare(raw, 150);
        assert.equal(b, a, JSON.stringify(raw));
      }),
      { numRuns: 100 },
    );
  });
});
