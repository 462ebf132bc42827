// Hostile HTTP/1.1 upgrades through real sockets, on both downstream paths (fast path, and node:http only),
// against a raw backend that records every byte: a pipelined upgrade behind a request node:http serves
// (once a crash), bytes after a declined upgrade (request smuggling), bytes sent with the upgrade head,
// upgrade requests with a body, h2c, unknown upgrade tokens, malformed upstream answers. After each case the
// proxy still serves a normal request.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { Proxy } from './proxy.ts';
import { startTestProxy } from './test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from './test/ads-server.ts';
import { HTTPBIN, assignment, edsCluster, gatewayListener, istioRoute, routeConfig } from './test/fixtures.ts';
import { RawConnection, exchange as rawExchange, freePort } from './test/raw-client.ts';
import { parseResponse } from '../e2e/lib/http.ts';

const HOST = 'raw.test';
const WS = 'Connection: Upgrade\r\nUpgrade: websocket\r\n';

/** Raw answers the backend gives to an upgrade request, by path. */
const ANSWERS: Record<string, string> = {
  '/decline': 'HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\ndenied',
  '/decline-chunked': 'HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n',
  '/ok200': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nX-Up: 1\r\n\r\nhello',
  '/bad-cr': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Bad: a\rb\r\n\r\n',
  '/bad-nul': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Bad: a\x00b\r\n\r\n',
  '/bad-status': 'HTTP/1.1 1O1 Switching Protocols\r\nUpgrade: websocket\r\n\r\n',
  '/bad-line': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nno colon here\r\n\r\n',
  '/bad-name': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX Bad: v\r\n\r\n',
  '/bad-lf': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\nX-Injected: 1\r\n\r\n',
};

interface BackendConn {
  /** Request lines the backend executed, in order. */
  requests: string[];
  /** Request heads as received. */
  heads: string[];
  /** Bytes received after the backend switched protocols. */
  tunnel: Buffer;
  /** Bytes received after an upgrade head and before the backend answered it. */
  beforeAnswer: number;
}

/**
 * A raw HTTP/1.1 backend: parses request heads (Content-Length bodies), records them, answers upgrades per
 * ANSWERS (101 + echo for /accept*, after 200 ms for /accept-slow and /decline-slow), keeps the connection open
 * after every answer, and would execute any further request it is sent.
 */
async function startRecordingBackend(): Promise<{ server: Server; port: number; conns: BackendConn[]; log: string[] }> {
  const conns: BackendConn[] = [];
  const log: string[] = [];
  const server = createServer((s: Socket) => {
    const c: BackendConn = { requests: [], heads: [], tunnel: Buffer.alloc(0), beforeAnswer: 0 };
    conns.push(c);
    let buf = Buffer.alloc(0);
    let mode: 'http' | 'tunnel' | 'waiting' = 'http';
    s.on('error', () => undefined);
    const pump = (): void => {
      while (mode === 'http') {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        const upgrade = /\r\nupgrade:/i.test(head);
        const bodyLen = upgrade ? 0 : cl ? Number(cl[1]) : 0;
        if (buf.length < end + 4 + bodyLen) return;
        buf = buf.subarray(end + 4 + bodyLen);
        const line = head.split('\r\n')[0] as string;
        c.requests.push(line);
        log.push(line);
        c.heads.push(head);
        const path = line.split(' ')[1] ?? '/';
        if (!upgrade) {
          const body = `ok ${path}`;
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
          continue;
        }
        const answer = (): void => {
          c.beforeAnswer = buf.length;
          if (path.startsWith('/accept')) {
            mode = 'tunnel';
            s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
            if (buf.length) onTunnel(buf);
            buf = Buffer.alloc(0);
            return;
          }
          mode = 'http';
          s.write(ANSWERS[path.replace('-slow', '')] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', 'latin1');
          pump();
        };
        if (path.endsWith('-slow')) {
          mode = 'waiting';
          setTimeout(answer, 200);
          return;
        }
        answer();
      }
    };
    const onTunnel = (d: Buffer): void => {
      c.tunnel = Buffer.concat([c.tunnel, d]);
      s.write(Buffer.concat([Buffer.from('echo:'), d]));
    };
    s.on('data', (d: Buffer) => {
      if (mode === 'tunnel') return onTunnel(d);
      buf = Buffer.concat([buf, d]);
      pump();
    });
  });
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.3', () => r((server.address() as { port: number }).port)));
  return { server, port, conns, log };
}

/** Writes the parts 50 ms apart on one connection and collects what comes back until 400 ms of silence or close. */
async function exchange(port: number, parts: string[]): Promise<{ data: Buffer; closed: boolean }> {
  const r = await rawExchange(port, parts, { gapMs: 50, idleMs: 400, maxMs: 6000 });
  return { data: Buffer.from(r.bytes, 'latin1'), closed: r.closed };
}

/** The status lines in a byte stream of HTTP/1.1 responses. */
function statusLines(data: Buffer): string[] {
  return data.toString('latin1').match(/HTTP\/1\.1 \d{3} [^\r]*/g) ?? [];
}

for (const fastPath of [true, false]) {
  describe(`hostile upgrades (${fastPath ? 'fast path' : 'node:http only'})`, () => {
    const ads = new TestAdsServer();
    let proxy: Proxy;
    let port = 0;
    let backend: Awaited<ReturnType<typeof startRecordingBackend>>;

    before(async () => {
      await ads.start();
      backend = await startRecordingBackend();
      port = await freePort();
      ads.set(CLUSTER_TYPE, [edsCluster(HTTPBIN)]);
      ads.set(ENDPOINT_TYPE, [assignment(HTTPBIN, [{ ip: '127.0.0.3', port: backend.port }])]);
      ads.set(LISTENER_TYPE, [gatewayListener(port)]);
      ads.set(ROUTE_TYPE, [
        routeConfig(`http.${port}`, [
          {
            name: `${HOST}:80`,
            domains: [HOST],
            routes: [{ match: { prefix: '/direct' }, direct_response: { status: 200, body: { inline_string: 'direct' } } }, istioRoute('/', HTTPBIN)],
          },
        ]),
      ]);
      proxy = await startTestProxy(ads, { fastPath });
    });

    after(async () => {
      await proxy?.close();
      await ads.stop();
      await new Promise<void>((r) => backend.server.close(() => r()));
    });

    /** The proxy still answers a plain request on a fresh connection. */
    async function stillServes(): Promise<void> {
      const c = await RawConnection.open('127.0.0.1', port);
      try {
        const r = await c.request(`GET /alive HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'ok /alive');
      } finally {
        c.close();
      }
    }

    const pipelinedCases: [string, string][] = [
      ['absolute-form', `GET http://${HOST}/first HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
      ['non-ASCII header value', `GET /first HTTP/1.1\r\nHost: ${HOST}\r\nX-Name: caf\xe9\r\n\r\n`],
      ['body with Content-Length', `POST /first HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 3\r\n\r\nabc`],
    ];
    for (const [name, first] of pipelinedCases) {
      test(`an upgrade pipelined behind a request node:http serves (${name}) waits for its response, then switches`, async () => {
        const r = await exchange(port, [`${first}GET /accept HTTP/1.1\r\nHost: ${HOST}\r\n${WS}\r\nEARLY`]);
        const text = r.data.toString('latin1');
        assert.deepEqual(statusLines(r.data), ['HTTP/1.1 200 OK', 'HTTP/1.1 101 Switching Protocols'], text);
        assert.ok(text.indexOf('ok /first') < text.indexOf('HTTP/1.1 101'), text);
        assert.ok(text.endsWith('echo:EARLY'), text);
        await stillServes();
      });
    }

    const smuggled = `GET /smuggled HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
    const declines: [string, string[], string, string][] = [
      ['in the same packet as the head', [`GET /decline HTTP/1.1\r\nHost: ${HOST}\r\n${WS}\r\n${smuggled}`], 'HTTP/1.1 403 Forbidden', 'denied'],
      ['before the upstream answered', [`GET /decline-slow HTTP/1.1\r\nHost: ${HOST}\r\n${WS}\r\n`, smuggled], 'HTTP/1.1 403 Forbidden', 'denied'],
      ['with a chunked refusal', [`GET /decline-chunked HTTP/1.1\r\nHost: ${HOST}\r\n${WS}\r\n${smuggled}`], 'HTTP/1.1 503 Service Unavailable', 'busy'],
    ];
    for (const [name, parts, statusLine, body] of declines) {
      test(`bytes after a declined upgrade never reach the upstream (${name}): the refusal is relayed and the connection closes`, async () => {
        const r = await exchange(port, parts);
        assert.ok(r.closed, 'the proxy closes the connection');
        const res = parseResponse(r.data);
        assert.equal(res.statusLine, statusLine);
        assert.equal(res.body.toString(), body);
        assert.equal(res.header('connection'), 'close');
        assert.equal(res.header('server'), 'istio-envoy');
        assert.match(res.header('x-envoy-upstream-service-time') ?? '', /^\d+$/);
        assert.ok(!backend.log.includes('GET /smuggled HTTP/1.1'), `backend saw ${JSON.stringify(backend.log)}`);
        await stillServes();
      });
    }

    test('a 2xx answer to an upgrade is a local reply with the upstream headers and no body, and the connection closes', async () => {
      const r = await exchange(port, [`GET /ok200 HTTP/1.1\r\nHost: ${HOST}\r\n${WS}\r\n${smuggled}`]);
      assert.ok(r.closed);
      const res = parseResponse(r.data);
      assert.equal(res.statusLine, 'HTTP/1.1 200 OK');
      assert.deepEqual(
        res.headers.map(([k]) => k),
        ['x-up', 'date', 'server', 'connection', 'content-length'],
      );
      assert.equal(res.header('content-length'), '0');
      assert.equal(res.body.length, 0);
      assert.ok(!backend.log.includes('GET /smuggled HTTP/1.1'));
      await stillServes();
    });

    test('bytes sent with the upgrade head are held until the 101, then delivered in order', async () => {
      const r = await exchange(port, [`GET /accept-slow HTTP/1.1\r\nHost: ${HOST}\r\n${WS}\r\nEARLY`, 'LATER']);
      const conn = backend.conns.find((c) => c.requests.includes('GET /accept-slow HTTP/1.1'));
      assert.ok(conn);
      assert.equal(conn.beforeAnswer, 0, 'nothing reached the upstream before it switched');
      assert.equal(conn.tunnel.toString(), 'EARLYLATER');
      assert.deepEqual(statusLines(r.data), ['HTTP/1.1 101 Switching Protocols']);
      assert.ok(r.data.toString('latin1').includes('echo:EARLY'));
      await stillServes();
    });

    const bodies: [string, string, string, string | undefined][] = [
      ['Content-Length', 'Content-Length: 5\r\n', 'hello', '5'],
      ['chunked', 'Transfer-Encoding: chunked\r\n', '5\r\nhello\r\n0\r\n\r\n', undefined],
    ];
    for (const [name, framing, payload, cl] of bodies) {
      test(`an upgrade request with a ${name} body: the head goes upstream, the body bytes follow the 101 as tunnel payload`, async () => {
        const r = await exchange(port, [`GET /accept-body-${name} HTTP/1.1\r\nHost: ${HOST}\r\n${WS}${framing}\r\n${payload}`]);
        assert.deepEqual(statusLines(r.data), ['HTTP/1.1 101 Switching Protocols']);
        const conn = backend.conns.find((c) => c.requests.includes(`GET /accept-body-${name} HTTP/1.1`));
        assert.ok(conn);
        const head = (conn.heads[0] as string).toLowerCase();
        assert.equal(/\r\ncontent-length: (\d+)/.exec(head)?.[1], cl);
        assert.ok(!head.includes('transfer-encoding'), head);
        assert.equal(conn.tunnel.toString('latin1'), payload);
        await stillServes();
      });
    }

    test('Upgrade: h2c is stripped and served as plain HTTP/1.1 on a keep-alive connection (body included)', async () => {
      const c = await RawConnection.open('127.0.0.1', port);
      try {
        const h2c = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n';
        const a = await c.request(`POST /h2c-a HTTP/1.1\r\nHost: ${HOST}\r\n${h2c}Content-Length: 3\r\n\r\nabc`);
        assert.equal(a.status, 200);
        assert.equal(a.body.toString(), 'ok /h2c-a');
        assert.equal(a.header('connection'), undefined);
        const b = await c.request(`GET /h2c-b HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
        assert.equal(b.body.toString(), 'ok /h2c-b');
        assert.equal(c.closed, false);
        const conn = backend.conns.find((x) => x.requests.includes('POST /h2c-a HTTP/1.1'));
        const head = (conn?.heads.find((h) => h.startsWith('POST /h2c-a')) ?? '').toLowerCase();
        assert.ok(!/\r\n(upgrade|http2-settings|connection):/.test(head), head);
        assert.match(head, /\r\ncontent-length: 3/);
      } finally {
        c.close();
      }
    });

    const refused: [string, string, string][] = [
      [
        'an upgrade type not enabled, on a routed request',
        `GET /foo HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n`,
        'HTTP/1.1 403 Forbidden',
      ],
      [
        'an upgrade type not enabled, on a direct_response route',
        `GET /direct HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n`,
        'HTTP/1.1 403 Forbidden',
      ],
      ['a websocket upgrade for a host without a route', `GET /x HTTP/1.1\r\nHost: nowhere.test\r\n${WS}\r\n`, 'HTTP/1.1 404 Not Found'],
    ];
    for (const [name, raw, statusLine] of refused) {
      test(`${name} is answered locally and the connection closes; nothing after it is read as a request`, async () => {
        const before = backend.log.length;
        const r = await exchange(port, [raw + smuggled]);
        assert.ok(r.closed);
        const res = parseResponse(r.data);
        assert.equal(res.statusLine, statusLine);
        assert.deepEqual(
          res.headers.map(([k]) => k),
          ['date', 'server', 'connection', 'content-length'],
        );
        assert.equal(res.header('connection'), 'close');
        assert.deepEqual(backend.log.slice(before), []);
        await stillServes();
      });
    }

    for (const path of ['/bad-cr', '/bad-nul', '/bad-status', '/bad-line', '/bad-name', '/bad-lf']) {
      test(`a malformed upstream answer to an upgrade (${path}) is a 502 protocol error, nothing of it reaches the client`, async () => {
        const r = await exchange(port, [`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${WS}\r\n`]);
        assert.ok(r.closed);
        const res = parseResponse(r.data);
        assert.equal(res.statusLine, 'HTTP/1.1 502 Bad Gateway');
        assert.equal(res.body.toString(), 'upstream connect error or disconnect/reset before headers. reset reason: protocol error');
        assert.ok(!r.data.toString('latin1').toLowerCase().includes('x-bad'));
        assert.ok(!r.data.toString('latin1').toLowerCase().includes('x-injected'));
        await stillServes();
      });
    }
  });
}
