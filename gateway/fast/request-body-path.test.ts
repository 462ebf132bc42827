// Request bodies through real sockets on both downstream paths (fast and node:http), pushed to the upstream
// socket by gateway/http/request-body.ts + gateway/upstream/h1-pool.ts: large Content-Length and chunked
// uploads past the retry buffer with a slow upstream reader (backpressure both ways), a client that goes away
// mid-body, an upstream that resets mid-body, and Envoy's answer to a response that comes before the request
// ended (`connection: close`, then the connection is closed).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../test/ads-server.ts';
import { assignment, edsCluster, eventually, gatewayListener, istioRoute, routeConfig } from '../test/fixtures.ts';
import { freePort } from '../test/raw-client.ts';

const HOST = 'uploads.example.com';
const UP = 'outbound|80||uploads.default.svc.cluster.local';

interface Side {
  name: string;
  ads: TestAdsServer;
  proxy: Proxy;
  port: number;
}

/** What the upstream saw of each request on /watch: whether its body ended or the connection went first. */
const watched: { complete: boolean; closed: boolean }[] = [];

/**
 * The upstream. /sink reads the body slowly (a pause every 256 KiB) and answers its length and sha256;
 * /reset destroys the connection once 64 KiB of body arrived; /early answers 413 at once without reading;
 * /watch reads and records how the request ended.
 */
function startUpstream(): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/early') {
      res.writeHead(413, ['content-length', '4']);
      res.end('big\n');
      return;
    }
    const hash = createHash('sha256');
    let bytes = 0;
    let sincePause = 0;
    const w = { complete: false, closed: false };
    if (url === '/watch') watched.push(w);
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
      if (url === '/reset' && bytes >= 64 * 1024) {
        req.socket.destroy();
        return;
      }
      sincePause += c.length;
      if (url === '/sink' && sincePause >= 256 * 1024) {
        sincePause = 0;
        req.pause();
        setTimeout(() => req.resume(), 15);
      }
    });
    req.on('close', () => {
      if (!w.complete) w.closed = true;
    });
    req.on('end', () => {
      w.complete = true;
      const body = JSON.stringify({ bytes, sha: hash.digest('hex') });
      res.writeHead(200, ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body))]);
      res.end(body);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.4', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

async function side(name: string, fastPath: boolean, upstreamPort: number): Promise<Side> {
  const ads = new TestAdsServer();
  await ads.start();
  const port = await freePort();
  ads.set(CLUSTER_TYPE, [edsCluster(UP)]);
  ads.set(ENDPOINT_TYPE, [assignment(UP, [{ ip: '127.0.0.4', port: upstreamPort }])]);
  ads.set(LISTENER_TYPE, [gatewayListener(port)]);
  ads.set(ROUTE_TYPE, [routeConfig(`http.${port}`, [{ name: `${HOST}:80`, domains: [HOST, `${HOST}:80`], routes: [istioRoute('/', UP)] }])]);
  return { name, ads, proxy: await startTestProxy(ads, { fastPath }), port };
}

interface Exchange {
  sock: Socket;
  /** Everything received so far (latin1). */
  out: () => string;
  closed: Promise<void>;
  /** Resolves once `re` matches what was received. */
  until: (re: RegExp, ms?: number) => Promise<string>;
}

function open(port: number): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let out = '';
    const waiters: (() => void)[] = [];
    let closedResolve!: () => void;
    const closed = new Promise<void>((r) => (closedResolve = r));
    sock.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      for (const w of waiters.splice(0)) w();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      closedResolve();
      for (const w of waiters.splice(0)) w();
    });
    const until = (re: RegExp, ms = 10_000): Promise<string> =>
      new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`timed out waiting for ${re}: ${JSON.stringify(out.slice(0, 400))}`)), ms);
        const check = (): void => {
          if (re.test(out)) {
            clearTimeout(timer);
            res(out);
          } else if (sock.destroyed && sock.readableEnded) {
            clearTimeout(timer);
            rej(new Error(`closed waiting for ${re}: ${JSON.stringify(out.slice(0, 400))}`));
          } else waiters.push(check);
        };
        check();
      });
    sock.once('connect', () => resolve({ sock, out: () => out, closed, until }));
    sock.once('error', reject);
  });
}

/** Writes `data` in pieces, waiting for 'drain' (the proxy's backpressure reaches the client). */
async function writeAll(sock: Socket, data: Buffer, piece = 128 * 1024): Promise<void> {
  for (let i = 0; i < data.length; i += piece) {
    if (!sock.write(data.subarray(i, i + piece))) await new Promise<void>((r) => sock.once('drain', () => r()));
  }
}

function chunked(data: Buffer, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) {
    const c = data.subarray(i, i + size);
    parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

describe('request bodies through both downstream paths', () => {
  let upstream: { server: Server; port: number };
  const sides: Side[] = [];

  before(async () => {
    upstream = await startUpstream();
    sides.push(await side('fast', true, upstream.port), await side('general', false, upstream.port));
  });

  after(async () => {
    for (const s of sides) {
      await s.proxy.close();
      await s.ads.stop();
    }
    upstream?.server.close();
    upstream?.server.closeAllConnections();
  });

  // 4 MiB: past the 1 MiB retry buffer, so the body streams (with backpressure from the slow reader).
  const body = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 12)) & 0xff;
  const sha = createHash('sha256').update(body).digest('hex');

  for (const framing of ['content-length', 'chunked'] as const) {
    test(`a 4 MiB ${framing} upload reaches a slow upstream intact, twice on one connection`, async () => {
      for (const s of sides) {
        const x = await open(s.port);
        for (let round = 1; round <= 2; round++) {
          const head = framing === 'chunked' ? 'transfer-encoding: chunked' : `content-length: ${body.length}`;
          x.sock.write(`POST /sink HTTP/1.1\r\nhost: ${HOST}\r\n${head}\r\n\r\n`);
          await writeAll(x.sock, framing === 'chunked' ? chunked(body, 100_000) : body);
          const re = new RegExp(`(HTTP/1\\.1 200 OK[\\s\\S]*?\\{"bytes":${body.length},"sha":"${sha}"\\}[\\s\\S]*){${round}}`);
          const out = await x.until(re);
          assert.doesNotMatch(out, /connection: close/, `${s.name}: the connection stays open`);
        }
        x.sock.destroy();
      }
    });
  }

  test('a client that goes away mid-body: the upstream connection is closed, the proxy serves the next request', async () => {
    for (const s of sides) {
      watched.length = 0;
      const x = await open(s.port);
      x.sock.write(`POST /watch HTTP/1.1\r\nhost: ${HOST}\r\ncontent-length: ${body.length}\r\n\r\n`);
      await writeAll(x.sock, body.subarray(0, 512 * 1024));
      await eventually(`${s.name}: upstream saw the request`, () => (watched.length === 1 ? true : undefined));
      x.sock.destroy();
      await eventually(`${s.name}: upstream connection closed before the body ended`, () => (watched[0]?.closed ? true : undefined));
      assert.equal(watched[0]?.complete, false);
      const y = await open(s.port);
      y.sock.write(`POST /sink HTTP/1.1\r\nhost: ${HOST}\r\ncontent-length: 5\r\n\r\nhello`);
      await y.until(/HTTP\/1\.1 200 OK[\s\S]*"bytes":5,/);
      y.sock.destroy();
    }
  });

  test('an upstream reset mid-body: 503 connection termination with connection: close, the same on both paths', async () => {
    const answers: string[] = [];
    for (const s of sides) {
      const x = await open(s.port);
      x.sock.write(`POST /reset HTTP/1.1\r\nhost: ${HOST}\r\ncontent-length: ${body.length}\r\n\r\n`);
      void writeAll(x.sock, body).catch(() => undefined);
      const out = await x.until(/\r\n\r\nupstream connect error or disconnect\/reset before headers\. reset reason: connection termination$/);
      await Promise.race([x.closed, new Promise((_, rej) => setTimeout(() => rej(new Error(`${s.name}: connection not closed`)), 3000))]);
      answers.push(out.replace(/^date: .*$/m, 'date: <date>'));
      x.sock.destroy();
    }
    assert.match(answers[0] as string, /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*connection: close\r\n/);
    assert.equal(answers[0], answers[1]);
  });

  test('an upstream answer before the request body ended: sent with connection: close, then the connection is closed (Envoy)', async () => {
    for (const s of sides) {
      const x = await open(s.port);
      x.sock.write(`POST /early HTTP/1.1\r\nhost: ${HOST}\r\ncontent-length: ${body.length}\r\n\r\n`);
      x.sock.write(body.subarray(0, 256 * 1024));
      const out = await x.until(/big\n$/);
      assert.match(out, /^HTTP\/1\.1 413 Payload Too Large\r\n/, s.name);
      assert.match(out, /\r\nconnection: close\r\n/, s.name);
      // The rest of the body and another request: neither is answered, the connection closes.
      x.sock.write(body.subarray(256 * 1024, 512 * 1024));
      x.sock.write(`GET /sink HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`);
      await Promise.race([x.closed, new Promise((_, rej) => setTimeout(() => rej(new Error(`${s.name}: connection not closed`)), 3000))]);
      assert.equal(x.out().split('HTTP/1.1 ').length - 1, 1, `${s.name}: one answer only`);
      x.sock.destroy();
    }
  });
});
