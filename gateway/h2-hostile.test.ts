// Hostile HTTP/2 through real sockets, raw frames written by hand: rapid reset (CVE-2023-44487), CONTINUATION
// floods (CVE-2024-27983 / 28182), oversized header blocks, PING and SETTINGS floods, malformed frames and a
// broken preface. Each case may cost its own connection; afterwards the proxy still serves HTTP/2 and HTTP/1.1
// on fresh connections, and no flood reaches the backend as a flood.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect, type Socket } from 'node:net';
import type { Server } from 'node:http';
import fc from 'fast-check';
import type { Proxy } from './proxy.ts';
import { startTestProxy } from './test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from './test/ads-server.ts';
import { HTTPBIN, assignment, edsCluster, gatewayListener, istioRoute, routeConfig, startEchoBackend, type Echo } from './test/fixtures.ts';
import { RawConnection, freePort } from './test/raw-client.ts';

const HOST = 'h2.test';
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK integer with an `n`-bit prefix (RFC 7541 5.1). */
function hpackInt(v: number, n: number, first = 0): Buffer {
  const max = (1 << n) - 1;
  if (v < max) return Buffer.from([first | v]);
  const out = [first | max];
  v -= max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2). */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  return Buffer.concat([Buffer.from([0x00]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v]);
}

const requestBlock = (path: string, extra: Buffer[] = []): Buffer =>
  Buffer.concat([literal(':method', 'GET'), literal(':scheme', 'http'), literal(':path', path), literal(':authority', HOST), ...extra]);

const settings = (): Buffer => frame(T.SETTINGS, 0, 0);

interface Outcome {
  /** Frame types the server sent, in order. */
  types: number[];
  /** GOAWAY error code, if the server sent one. */
  goaway: number | undefined;
  /** Streams the server reset. */
  resets: number;
  /** Response HEADERS frames seen. */
  responses: number;
  /** The server closed the connection. */
  closed: boolean;
}

/**
 * Writes `chunks` to a fresh connection (stopping early if the server closes it), then reads frames until the
 * server closes or nothing arrives for `idleMs`.
 */
async function attack(port: number, chunks: Iterable<Buffer>, idleMs = 300): Promise<Outcome> {
  const s: Socket = connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.once('connect', () => r()));
  const o: Outcome = { types: [], goaway: undefined, resets: 0, responses: 0, closed: false };
  let buf = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const type = buf[3] as number;
      o.types.push(type);
      if (type === T.GOAWAY && len >= 8) o.goaway = buf.readUInt32BE(13);
      if (type === T.RST_STREAM) o.resets++;
      if (type === T.HEADERS) o.responses++;
      buf = buf.subarray(9 + len);
    }
  });
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  void closed.then(() => (o.closed = true));
  for (const c of chunks) {
    if (o.closed || s.destroyed) break;
    if (!s.write(c)) await Promise.race([new Promise((r) => s.once('drain', r)), closed]);
  }
  let last = o.types.length;
  for (;;) {
    await Promise.race([new Promise((r) => setTimeout(r, idleMs)), closed]);
    if (o.closed || o.types.length === last) break;
    last = o.types.length;
  }
  s.destroy();
  return o;
}

describe('hostile HTTP/2 (h2c) against the gateway', () => {
  const ads = new TestAdsServer();
  let proxy: Proxy;
  let port = 0;
  let backend: { server: Server; port: number; seen: Echo[] };

  before(async () => {
    await ads.start();
    backend = await startEchoBackend('127.0.0.3', 'h2-backend');
    port = await freePort();
    ads.set(CLUSTER_TYPE, [edsCluster(HTTPBIN)]);
    ads.set(ENDPOINT_TYPE, [assignment(HTTPBIN, [{ ip: '127.0.0.3', port: backend.port }])]);
    ads.set(LISTENER_TYPE, [gatewayListener(port)]);
    ads.set(ROUTE_TYPE, [routeConfig(`http.${port}`, [{ name: `${HOST}:80`, domains: [HOST], routes: [istioRoute('/', HTTPBIN)] }])]);
    proxy = await startTestProxy(ads, {});
  });

  after(async () => {
    await proxy?.close();
    await ads.stop();
    backend?.server.closeAllConnections();
    backend?.server.close();
  });

  /** A fresh HTTP/2 connection and a fresh HTTP/1.1 one both get 200. */
  async function stillServes(): Promise<void> {
    const session = h2connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': '/alive', ':authority': HOST });
        let st = 0;
        req.on('response', (h) => (st = Number(h[':status'])));
        req.on('data', () => undefined);
        req.on('end', () => resolve(st));
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 200);
    } finally {
      session.close();
    }
    const c = await RawConnection.open('127.0.0.1', port);
    try {
      assert.equal((await c.request(`GET /alive HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)).status, 200);
    } finally {
      c.close();
    }
  }

  test('a well-formed request with raw frames is answered (the frame writer is right)', async () => {
    const o = await attack(port, [PREFACE, settings(), frame(T.HEADERS, END_HEADERS | END_STREAM, 1, requestBlock('/raw'))]);
    assert.ok(o.responses >= 1, `frames: ${o.types.join(',')}`);
  });

  test('rapid reset (CVE-2023-44487): 20,000 streams opened and reset at once; the session is cut, the backend is not flooded', async () => {
    const seenBefore = backend.seen.length;
    function* flood(): Generator<Buffer> {
      yield Buffer.concat([PREFACE, settings()]);
      for (let i = 0; i < 20_000; i += 100) {
        const batch: Buffer[] = [];
        for (let k = i; k < i + 100; k++) {
          const id = 2 * k + 1;
          batch.push(frame(T.HEADERS, END_HEADERS | END_STREAM, id, requestBlock(`/rr/${k}`)), frame(T.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
        }
        yield Buffer.concat(batch);
      }
    }
    const o = await attack(port, flood(), 500);
    assert.ok(o.closed || o.goaway !== undefined, `the gateway ended the session (frames: ${o.types.length})`);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(backend.seen.length - seenBefore < 5000, `${backend.seen.length - seenBefore} requests reached the backend`);
    await stillServes();
  });

  test('CONTINUATION flood (CVE-2024-27983/28182): a header block that never ends is cut, not buffered', async () => {
    function* flood(): Generator<Buffer> {
      yield Buffer.concat([PREFACE, settings(), frame(T.HEADERS, 0, 1, requestBlock('/cont'))]);
      const piece = literal('x-filler', 'f'.repeat(1000));
      for (let i = 0; i < 20_000; i += 50) {
        const batch: Buffer[] = [];
        for (let k = 0; k < 50; k++) batch.push(frame(T.CONTINUATION, 0, 1, piece));
        yield Buffer.concat(batch);
      }
    }
    const o = await attack(port, flood(), 500);
    assert.ok(o.closed || o.goaway !== undefined || o.resets > 0, `the gateway refused the block (frames: ${o.types.join(',')})`);
    assert.equal(o.responses, 0);
    await stillServes();
  });

  test('a header block over the size limit is refused; the session serves on', async () => {
    const big = requestBlock('/big', [literal('x-big', 'b'.repeat(200 * 1024))]);
    // Split into 16 KiB frames (the default SETTINGS_MAX_FRAME_SIZE).
    const frames: Buffer[] = [];
    for (let off = 0; off < big.length; off += 16384) {
      const last = off + 16384 >= big.length;
      frames.push(frame(off === 0 ? T.HEADERS : T.CONTINUATION, (last ? END_HEADERS : 0) | (off === 0 ? END_STREAM : 0), 1, big.subarray(off, off + 16384)));
    }
    const o = await attack(port, [PREFACE, settings(), ...frames]);
    assert.ok(o.closed || o.goaway !== undefined || o.resets > 0 || o.types.includes(T.HEADERS), `frames: ${o.types.join(',')}`);
    await stillServes();
  });

  test('more headers than max_headers_count (100): 431, as on HTTP/1.1, the session serves on', async () => {
    const session = h2connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      const get = (n: number): Promise<number> =>
        new Promise((resolve, reject) => {
          const headers: Record<string, string> = { ':path': '/many', ':authority': HOST };
          for (let i = 0; i < n; i++) headers[`x-h${i}`] = 'v';
          const req = session.request(headers);
          let st = 0;
          req.on('response', (h) => (st = Number(h[':status'])));
          req.on('data', () => undefined);
          req.on('end', () => resolve(st));
          req.on('error', reject);
          req.end();
        });
      assert.equal(await get(150), 431);
      assert.equal(await get(10), 200);
    } finally {
      session.close();
    }
  });

  test('PING and SETTINGS floods without reading the answers end the session', async () => {
    function* flood(): Generator<Buffer> {
      yield Buffer.concat([PREFACE, settings()]);
      const ping = frame(T.PING, 0, 0, Buffer.alloc(8));
      const set = frame(T.SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100]));
      for (let i = 0; i < 200; i++) yield Buffer.concat(Array.from({ length: 500 }, (_, k) => (k % 2 ? ping : set)));
    }
    const o = await attack(port, flood(), 500);
    assert.ok(o.types.length > 0, 'the gateway answered at least its own SETTINGS');
    await stillServes();
  });

  for (const [name, bytes] of [
    ['DATA on stream 0', frame(T.DATA, 0, 0, Buffer.from('x'))],
    ['HEADERS with a broken HPACK block', frame(T.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]))],
    ['WINDOW_UPDATE with a zero increment', frame(T.WINDOW_UPDATE, 0, 0, Buffer.alloc(4))],
    ['a frame longer than SETTINGS_MAX_FRAME_SIZE', frame(T.DATA, 0, 1, Buffer.alloc(20000))],
    ['SETTINGS with ENABLE_PUSH=2', frame(T.SETTINGS, 0, 0, Buffer.from([0, 2, 0, 0, 0, 2]))],
    ['HEADERS on an even (server) stream id', frame(T.HEADERS, END_HEADERS | END_STREAM, 2, requestBlock('/even'))],
    [
      'a request without :path',
      frame(T.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.concat([literal(':method', 'GET'), literal(':scheme', 'http'), literal(':authority', HOST)])),
    ],
    [
      'a connection-specific header (transfer-encoding)',
      frame(T.HEADERS, END_HEADERS | END_STREAM, 1, requestBlock('/te', [literal('transfer-encoding', 'chunked')])),
    ],
    ['an uppercase header name', frame(T.HEADERS, END_HEADERS | END_STREAM, 1, requestBlock('/upper', [literal('X-Upper', 'v')]))],
  ] as const) {
    test(`malformed: ${name} is refused (GOAWAY or RST_STREAM), never routed`, async () => {
      const seenBefore = backend.seen.length;
      const o = await attack(port, [PREFACE, settings(), bytes]);
      assert.ok(o.goaway !== undefined || o.resets > 0 || o.closed, `frames: ${o.types.join(',')}`);
      assert.equal(backend.seen.length, seenBefore);
      await stillServes();
    });
  }

  test('fuzz: random frame sequences after a valid preface never take the gateway down', async () => {
    // Any frame type (known and unknown), flags, small stream ids, payloads mixing valid request headers
    // with random bytes; 150 connections per run, each may fail on its own.
    const arbFrame = fc.record({
      type: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), fc.integer({ min: 10, max: 255 })),
      flags: fc.integer({ min: 0, max: 255 }),
      stream: fc.constantFrom(0, 1, 2, 3, 5, 7, 0x7fffffff),
      payload: fc.oneof(
        fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
        fc.constant(requestBlock('/fuzz')),
        fc.constantFrom(Buffer.alloc(4), Buffer.alloc(8), Buffer.from([0, 0, 0, 1, 0, 0, 0, 0])),
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(arbFrame, { minLength: 1, maxLength: 12 }), async (frames) => {
        await attack(port, [PREFACE, settings(), ...frames.map((f) => frame(f.type, f.flags, f.stream, f.payload))], 50);
      }),
      { numRuns: 150, seed: 20261207 },
    );
    await stillServes();
  });

  test('a broken preface is not HTTP/2 and not a request: the connection closes, nothing is routed', async () => {
    const seenBefore = backend.seen.length;
    const o = await attack(port, [Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n', 'latin1')]);
    assert.ok(o.closed || o.goaway !== undefined, `frames: ${o.types.join(',')}`);
    assert.equal(backend.seen.length, seenBefore);
    await stillServes();
  });
});
