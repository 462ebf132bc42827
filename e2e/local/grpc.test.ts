// HTTP/2 and gRPC through the gateway in local mode: real @grpc/grpc-js clients and servers (h2c with prior
// knowledge to the gateway, HTTP/2 to a Service port named `grpc`), node:http2 and curl for plain HTTP/2.
// Unary, the three streaming kinds, metadata and trailers both ways, large messages, server errors, deadlines,
// and Envoy's gRPC local replies (no route, no healthy upstream).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { connect as h2connect, constants, createServer as createH2Server, type IncomingHttpHeaders } from 'node:http2';
import { connect, createServer as createNetServer, type Server as NetServer } from 'node:net';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { EchoClient, cancelled, echoServer, type Echo } from '../lib/grpc-echo.ts';
import { eventually, freePort } from '../lib/process.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';
import { rawRequest } from '../lib/http.ts';

const HOST = 'grpc.example.com';
const GRPC_IP = '127.0.20.1';
const HTTP_IP = '127.0.20.2';
const DUAL_IP = '127.0.20.3';

/** A backend speaking HTTP/1.1 and h2c (prior knowledge) on one port, answering with the version it was spoken to in. */
function dualBackend(): NetServer {
  const answer = (req: { httpVersion: string }, res: { writeHead(s: number, h: Record<string, string>): unknown; end(b: string): unknown }): void => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(req.httpVersion);
  };
  const h1 = createHttpServer(answer);
  const h2 = createH2Server();
  h2.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    if (headers[':path'] === '/reset-mid') {
      // Half a response, then the connection drops: the client must see its stream fail, not a short answer.
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('half');
      setTimeout(() => stream.session?.destroy(), 50);
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('2.0');
  });
  return byPreface(h1, h2);
}

/** One port for both servers: a connection opening with the HTTP/2 preface goes to `h2`, any other to `h1`. */
function byPreface(h1: ReturnType<typeof createHttpServer>, h2: ReturnType<typeof createH2Server>): NetServer {
  return createNetServer((sock) => {
    sock.once('data', (first: Buffer) => {
      sock.pause();
      sock.unshift(first);
      // node:http2 reads the socket itself once it has it; node:http needs it flowing again.
      if (first.toString('latin1').startsWith('PRI * HTTP/2.0')) h2.emit('connection', sock);
      else {
        h1.emit('connection', sock);
        sock.resume();
      }
    });
  });
}

describe('local mode: HTTP/2 (h2c) and gRPC through the gateway', () => {
  let gw: Gateway;
  let server: grpc.Server;
  let http: Backend;
  let dual: NetServer;
  const clients: grpc.Client[] = [];
  const client = (authority = HOST): Echo => {
    const c = new EchoClient(`127.0.0.1:${gw.port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as Echo;
    clients.push(c);
    return c;
  };
  const unary = (c: Echo, body: string | Buffer, o: grpc.CallOptions = {}, md = new grpc.Metadata()) =>
    new Promise<{ err: grpc.ServiceError | null; reply?: Buffer; trailers?: grpc.Metadata }>((resolve) => {
      let trailers: grpc.Metadata | undefined;
      const call = c.unary(typeof body === 'string' ? Buffer.from(body) : body, md, o, (err, reply) => setImmediate(() => resolve({ err, reply, trailers })));
      call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
    });

  before(async () => {
    const gport = await freePort();
    server = echoServer();
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`${GRPC_IP}:${gport}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
    );
    const hport = await freePort();
    http = await startBackend(HTTP_IP, hport, 'plain-http');
    const dport = await freePort();
    dual = dualBackend();
    await new Promise<void>((resolve) => dual.listen(dport, DUAL_IP, () => resolve()));
    gw = await startGateway({ accessLog: true });
    gw.write(
      '10-gateway.yaml',
      gatewayYaml('h2-gateway', [HOST, 'plain.example.com', 'empty.example.com', 'timeout.example.com', 'slow.example.com', 'dual.example.com']),
    );
    // A Service port named grpc: the cluster speaks HTTP/2 upstream.
    gw.write('20-grpc.yaml', serviceYaml('grpc-echo', gport, [{ ip: GRPC_IP }]).replaceAll('{name: http, port:', '{name: grpc, port:'));
    gw.write('21-plain.yaml', serviceYaml('plain', hport, [{ ip: HTTP_IP }]));
    gw.write('22-dual.yaml', serviceYaml('dual', dport, [{ ip: DUAL_IP }]));
    gw.write(
      '30-vs.yaml',
      `${virtualServiceYaml('grpc', HOST, 'h2-gateway', 'grpc-echo')}---
${virtualServiceYaml('grpc-timeout', 'timeout.example.com', 'h2-gateway', 'plain')}    timeout: 0.5s
---
# useClientProtocol: the upstream protocol follows the client's (use_downstream_protocol_config).
${virtualServiceYaml('dual', 'dual.example.com', 'h2-gateway', 'dual')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dual, namespace: default}
spec:
  host: dual
  trafficPolicy:
    connectionPool:
      http: {useClientProtocol: true}
---
${virtualServiceYaml('slow', 'slow.example.com', 'h2-gateway', 'plain')}---
${virtualServiceYaml('plain', 'plain.example.com', 'h2-gateway', 'plain')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: empty, namespace: default}
spec:
  hosts: [empty.example.com]
  gateways: [h2-gateway]
  http:
  - route: [{destination: {host: grpc-echo, subset: none}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: grpc-echo, namespace: default}
spec:
  host: grpc-echo
  subsets: [{name: none, labels: {version: none}}]
`,
    );
    await eventually('the gRPC route', async () => ((await unary(client(), 'ping')).err === null ? true : undefined), 20_000, 200);
  });

  after(async () => {
    for (const c of clients) c.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await http?.close();
    dual?.close();
    await gw?.stop();
  });

  test('unary: metadata to the server, the reply, and the trailing metadata back; the gateway counts an HTTP/2 request', async () => {
    const before = await gw.stat(`http.outbound_0.0.0.0_${gw.port};.downstream_rq_http2_total`).catch(() => 0);
    const md = new grpc.Metadata();
    md.set('x-custom', 'hello');
    const r = await unary(client(), 'ping', {}, md);
    assert.equal(r.err, null);
    assert.deepEqual(JSON.parse(String(r.reply)), { size: 4, head: 'ping', xfp: 'http', requestId: true, custom: 'hello' });
    assert.deepEqual(r.trailers?.get('x-echo-trailer'), ['bye']);
    assert.ok((await gw.stat(`http.outbound_0.0.0.0_${gw.port};.downstream_rq_http2_total`)) > before);
  });

  test('a server error passes through as its status and message', async () => {
    const r = await unary(client(), 'fail');
    assert.equal(r.err?.code, grpc.status.NOT_FOUND);
    assert.equal(r.err?.details, 'no such thing');
  });

  test("Istio's default retry policy retries a gRPC UNAVAILABLE (trailers-only) and not an INTERNAL", async () => {
    const r = await unary(client(), 'flaky');
    assert.equal(r.err, null, String(r.err));
    assert.equal(String(r.reply), 'attempt 2');
    const internal = await unary(client(), 'internal');
    assert.equal(internal.err?.code, grpc.status.INTERNAL);
    assert.equal(internal.err?.details, 'attempt 1');
  });

  test('large messages both ways (flow control): 3 MiB up, 3 MiB down', async () => {
    const up = await unary(client(), Buffer.concat([Buffer.from('big:16'), Buffer.alloc(3 << 20, 'u')]));
    assert.equal(up.err, null, `upload: ${String(up.err)}\n${gw.proc.output().slice(-3000)}`);
    assert.equal(up.reply?.length, 16);
    const down = await unary(client(), `big:${3 << 20}`, {}, new grpc.Metadata());
    assert.equal(down.err, null, `download: ${String(down.err)}\n${gw.proc.output().slice(-3000)}`);
    assert.equal(down.reply?.length, 3 << 20);
  });

  test('server streaming, client streaming and bidirectional streaming', async () => {
    const c = client();
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = c.count(Buffer.from('50'));
      s.on('data', (b: Buffer) => got.push(b.toString()));
      s.on('end', () => resolve());
      s.on('error', reject);
    });
    assert.equal(got.length, 50);
    assert.equal(got[49], '#49');
    const sum = await new Promise<string>((resolve, reject) => {
      const w = c.sum((e, r) => (e ? reject(e) : resolve(String(r))));
      for (const x of ['a', 'b', 'c']) w.write(Buffer.from(x));
      w.end();
    });
    assert.equal(sum, 'a+b+c');
    const chat: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const d = c.chat();
      d.on('data', (b: Buffer) => {
        chat.push(b.toString());
        if (chat.length === 3) d.end();
      });
      d.on('end', () => resolve());
      d.on('error', reject);
      for (const x of ['1', '2', '3']) d.write(Buffer.from(x));
    });
    assert.deepEqual(chat, ['re:1', 're:2', 're:3']);
  });

  test('a deadline shorter than the server takes ends the call DEADLINE_EXCEEDED', async () => {
    const r = await unary(client(), 'slow', { deadline: Date.now() + 300 });
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
  });

  /** A raw unary gRPC call over node:http2 (no client-side deadline): the response headers and trailers. */
  async function rawGrpc(
    authority: string,
    body: string,
    headers: Record<string, string> = {},
    path = '/meshgate.test.Echo/Unary',
  ): Promise<{ ms: number; head: Record<string, unknown>; trailers: Record<string, unknown> }> {
    const session = h2connect(`http://127.0.0.1:${gw.port}`);
    session.on('error', () => undefined);
    const started = Date.now();
    try {
      return await new Promise((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': path,
          ':authority': authority,
          'content-type': 'application/grpc',
          te: 'trailers',
          ...headers,
        });
        let head: Record<string, unknown> = {};
        let trailers: Record<string, unknown> = {};
        req.on('response', (h) => (head = h));
        req.on('trailers', (t: IncomingHttpHeaders) => (trailers = t));
        req.on('data', () => undefined);
        req.on('end', () => resolve({ ms: Date.now() - started, head, trailers }));
        req.on('error', reject);
        const msg = Buffer.from(body);
        const frame = Buffer.alloc(5 + msg.length);
        frame.writeUInt32BE(msg.length, 1);
        msg.copy(frame, 5);
        req.end(frame);
      });
    } finally {
      session.close();
    }
  }

  // These go to an upstream that takes 2 s and enforces no deadline (the plain HTTP/1.1 backend), so the answer
  // is the gateway's own; the backend records the grpc-timeout it was told.
  const seenTimeout = (path: string): string | undefined => http.seen.find((r) => r.path === path)?.headers['grpc-timeout'];

  test("grpc-timeout is the request's timeout (istiod's max_grpc_timeout 0s): the gateway answers UNAVAILABLE `upstream request timeout`", async (t) => {
    http.behave = () => ({ delayMs: 2000 });
    t.after(() => (http.behave = () => ({})));
    const r = await rawGrpc('slow.example.com', 'slow', { 'grpc-timeout': '300m' }, '/meshgate.test.Echo/Timeout');
    assert.equal(r.head[':status'], 200);
    assert.equal(r.head['grpc-status'], '14', JSON.stringify(r.head));
    assert.equal(r.head['grpc-message'], 'upstream request timeout');
    assert.ok(r.ms >= 250 && r.ms < 1900, `answered after ${r.ms} ms`);
    assert.equal(seenTimeout('/meshgate.test.Echo/Timeout'), '300m');
    // Without grpc-timeout there is no timeout (istiod's 0s): the slow answer arrives.
    const none = await rawGrpc('slow.example.com', 'slow', {}, '/meshgate.test.Echo/NoTimeout');
    assert.equal(none.head[':status'], 200);
    assert.equal(none.head['grpc-status'], undefined, JSON.stringify(none.head));
    assert.ok(none.ms >= 1900, `answered after ${none.ms} ms`);
  });

  test('a VirtualService timeout caps a gRPC request without grpc-timeout (max_grpc_timeout)', async (t) => {
    http.behave = () => ({ delayMs: 2000 });
    t.after(() => (http.behave = () => ({})));
    const r = await rawGrpc('timeout.example.com', 'slow', {}, '/meshgate.test.Echo/VsTimeout');
    assert.equal(r.head['grpc-status'], '14', JSON.stringify(r.head));
    assert.equal(r.head['grpc-message'], 'upstream request timeout');
    assert.ok(r.ms >= 450 && r.ms < 1900, `answered after ${r.ms} ms`);
    assert.equal(seenTimeout('/meshgate.test.Echo/VsTimeout'), '500m');
    // And a longer grpc-timeout is capped by it too.
    const capped = await rawGrpc('timeout.example.com', 'slow', { 'grpc-timeout': '10S' }, '/meshgate.test.Echo/Capped');
    assert.equal(capped.head['grpc-status'], '14', JSON.stringify(capped.head));
    assert.ok(capped.ms < 1900, `answered after ${capped.ms} ms`);
    assert.equal(seenTimeout('/meshgate.test.Echo/Capped'), '500m');
  });

  test('cancellation: a client cancelling a server stream cancels the upstream call (RST_STREAM passed on, http2.rx_reset)', async () => {
    const before = cancelled.length;
    const resets = await gw.stat('http2.rx_reset');
    const got: string[] = [];
    const call = client().count(Buffer.from('forever'));
    call.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      call.on('data', (b: Buffer) => {
        got.push(b.toString());
        if (got.length === 3) resolve();
      });
    });
    const at = Date.now();
    call.cancel();
    await eventually('the server saw the cancellation', () => Promise.resolve(cancelled.length > before ? true : undefined), 5000, 20);
    assert.ok((cancelled.at(-1) as number) - at < 2000);
    await eventually('http2.rx_reset counted', async () => ((await gw.stat('http2.rx_reset')) === resets + 1 ? true : undefined), 5000, 50);
    await eventually('no stream left active', async () => ((await gw.stat('http2.streams_active')) === 0 ? true : undefined), 5000, 50);
  });

  test("Envoy's gRPC local replies: no route is UNIMPLEMENTED (404), no healthy upstream UNAVAILABLE (503) with its text", async () => {
    const none = await unary(client('nowhere.example.com'), 'ping');
    assert.equal(none.err?.code, grpc.status.UNIMPLEMENTED);
    const empty = await unary(client('empty.example.com'), 'ping');
    assert.equal(empty.err?.code, grpc.status.UNAVAILABLE);
    assert.equal(empty.err?.details, 'no healthy upstream');
  });

  test('plain HTTP/2 with prior knowledge (node:http2) to an HTTP/1.1 backend; the access log says HTTP/2', async () => {
    const session = h2connect(`http://127.0.0.1:${gw.port}`);
    try {
      const r = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = session.request({ ':path': '/h2-path?x=1', ':authority': 'plain.example.com' });
        let status = 0;
        let headers: Record<string, unknown> = {};
        let body = '';
        req.on('response', (h) => {
          status = Number(h[':status']);
          headers = h;
        });
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => resolve({ status, headers, body }));
        req.on('error', reject);
        req.end();
      });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['server'], 'istio-envoy');
      assert.equal(r.headers['connection'], undefined);
      assert.equal(r.headers['transfer-encoding'], undefined);
      const line = await eventually(
        'the access log line',
        () =>
          Promise.resolve(
            gw
              .accessLog()
              .split('\n')
              .find((l) => l.includes('/h2-path?x=1')),
          ),
        5000,
        100,
      );
      assert.match(line, /"GET \/h2-path\?x=1 HTTP\/2" 200 /);
    } finally {
      session.close();
    }
  });

  test('DestinationRule useClientProtocol: an HTTP/2 client reaches the service over HTTP/2, an HTTP/1.1 client over HTTP/1.1', async () => {
    const curl = async (...flags: string[]): Promise<string> =>
      (await promisify(execFile)('curl', ['-sS', ...flags, '-H', 'Host: dual.example.com', `http://127.0.0.1:${gw.port}/which`])).stdout;
    assert.equal(await curl('--http2-prior-knowledge'), '2.0');
    assert.equal(await curl('--http1.1'), '1.1');
  });

  test('an upstream connection lost after the response started resets the client stream (no truncated answer passed as whole)', async () => {
    const session = h2connect(`http://127.0.0.1:${gw.port}`);
    session.on('error', () => undefined);
    try {
      const r = await new Promise<{ status: number; body: string; rst: number | undefined; ended: boolean }>((resolve) => {
        const req = session.request({ ':path': '/reset-mid', ':authority': 'dual.example.com' });
        let status = 0;
        let body = '';
        let ended = false;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => (ended = true));
        req.on('error', () => undefined);
        req.on('close', () => resolve({ status, body, rst: req.rstCode, ended }));
        req.end();
      });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'half');
      assert.notEqual(r.rst, constants.NGHTTP2_NO_ERROR, `the stream ended cleanly: ${JSON.stringify(r)}`);
    } finally {
      session.close();
    }
  });

  test('curl --http2-prior-knowledge gets the same answer as HTTP/1.1', async () => {
    const { stdout } = await promisify(execFile)('curl', [
      '-sS',
      '--http2-prior-knowledge',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      '-H',
      'Host: plain.example.com',
      `http://127.0.0.1:${gw.port}/status/200`,
    ]);
    assert.equal(stdout, '2 200');
  });
});

/** What the trailer backend saw of one complete request. */
interface Seen {
  proto: string;
  authority: string;
  path: string;
  body: string;
  /** The request trailers, flat; null when there were none. */
  trailers: string[] | null;
  transferEncoding?: string | undefined;
  /** The gateway reset the stream (RST_STREAM code): the request did not complete. */
  rst?: number;
}

/**
 * A backend speaking HTTP/1.1 and h2c on one port that records each complete request with its body and trailers.
 * A path starting `/retry` is answered 503 the first time it is seen.
 */
function trailerBackend(seen: Seen[]): NetServer {
  const h1 = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const trailers = req.rawTrailers.length > 0 ? req.rawTrailers : null;
      const body = Buffer.concat(chunks).toString();
      seen.push({ proto: '1.1', authority: req.headers.host ?? '', path: req.url ?? '', body, trailers, transferEncoding: req.headers['transfer-encoding'] });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  const h2 = createH2Server();
  h2.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    let trailers: string[] | null = null;
    stream.on('trailers', (_t: IncomingHttpHeaders, _f: number, raw: string[]) => (trailers = raw));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const path = String(headers[':path']);
      const body = Buffer.concat(chunks).toString();
      // node ends the readable side of a stream the gateway reset too: that request was never complete.
      const rst = stream.rstCode;
      seen.push({ proto: '2', authority: String(headers[':authority']), path, body, trailers, ...(rst ? { rst } : {}) });
      if (rst) return;
      const retry = path.startsWith('/retry') && seen.filter((s) => s.path === path).length === 1;
      stream.respond({ ':status': retry ? 503 : 200, 'content-type': 'text/plain' });
      stream.end(retry ? 'try again' : 'ok');
    });
  });
  return byPreface(h1, h2);
}

/** A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2); names and values under 127 bytes. */
function hpackLiteral(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name, 'latin1'), Buffer.from([value.length]), Buffer.from(value, 'latin1')]);
}

function h2Frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

describe('local mode: HTTP/2 request trailers through the gateway', () => {
  const H2_IP = '127.0.21.1';
  const H1_IP = '127.0.21.2';
  let gw: Gateway;
  const seen: Seen[] = [];
  const backends: NetServer[] = [];
  const seenAt = (path: string): Seen[] => seen.filter((s) => s.path === path);

  /** A POST over h2c to the gateway: `body`, then `trailers` as a trailing HEADERS frame (none when undefined). */
  async function post(
    authority: string,
    path: string,
    body: string,
    trailers: Record<string, string | string[]> | undefined,
  ): Promise<{ status: number; body: string; rst: number | undefined }> {
    const session = h2connect(`http://127.0.0.1:${gw.port}`);
    session.on('error', () => undefined);
    try {
      return await new Promise((resolve) => {
        const req = session.request({ ':method': 'POST', ':path': path, ':authority': authority }, { waitForTrailers: trailers !== undefined });
        let status = 0;
        let answer = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (c: Buffer) => (answer += c.toString()));
        req.on('error', () => undefined);
        req.on('wantTrailers', () => req.sendTrailers(trailers ?? {}));
        req.on('close', () => resolve({ status, body: answer, rst: req.rstCode }));
        req.setTimeout(10_000, () => req.close());
        req.end(body);
      });
    } finally {
      session.close();
    }
  }

  before(async () => {
    for (const ip of [H2_IP, H1_IP]) {
      const b = trailerBackend(seen);
      backends.push(b);
      await new Promise<void>((resolve) => b.listen(0, ip, () => resolve()));
    }
    const port = (b: NetServer): number => (b.address() as { port: number }).port;
    gw = await startGateway();
    const hosts = ['trailers.example.com', 'mirror.example.com', 'h1.example.com'];
    gw.write('10-gateway.yaml', gatewayYaml('trailers-gateway', hosts));
    // A Service port named http2: the cluster speaks HTTP/2 upstream; one named http: HTTP/1.1.
    gw.write('20-h2.yaml', serviceYaml('t-h2', port(backends[0] as NetServer), [{ ip: H2_IP }]).replaceAll('name: http, port:', 'name: http2, port:'));
    gw.write('21-h1.yaml', serviceYaml('t-h1', port(backends[1] as NetServer), [{ ip: H1_IP }]));
    gw.write(
      '30-vs.yaml',
      `${virtualServiceYaml('trailers', 'trailers.example.com', 'trailers-gateway', 't-h2')}    retries: {attempts: 2, retryOn: 5xx}
---
${virtualServiceYaml('h1', 'h1.example.com', 'trailers-gateway', 't-h1')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mirror, namespace: default}
spec:
  hosts: [mirror.example.com]
  gateways: [trailers-gateway]
  http:
  - route: [{destination: {host: t-h2}}]
    mirror: {host: t-h2}
    mirrorPercentage: {value: 100}
`,
    );
    for (const h of hosts)
      await eventually(`the route for ${h}`, async () => ((await post(h, '/ready', '', undefined)).status === 200 ? true : undefined), 20_000, 200);
  });

  after(async () => {
    for (const b of backends) b.close();
    await gw?.stop();
  });

  test('trailers of an HTTP/2 request reach an HTTP/2 service after the body, repeated names in order; http2.trailers counts them', async () => {
    const counted = await gw.stat('http2.trailers').catch(() => 0);
    const r = await post('trailers.example.com', '/t/1', 'hello', { 'x-checksum': 'abc', 'x-multi': ['1', '2'] });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(seenAt('/t/1'), [
      { proto: '2', authority: 'trailers.example.com', path: '/t/1', body: 'hello', trailers: ['x-checksum', 'abc', 'x-multi', '1', 'x-multi', '2'] },
    ]);
    assert.equal(await gw.stat('http2.trailers'), counted + 1);
    // Without trailers the upstream request has none either.
    assert.equal((await post('trailers.example.com', '/t/2', 'hi', undefined)).status, 200);
    assert.equal(seenAt('/t/2')[0]?.trailers, null);
  });

  test('a retried request and a mirrored one carry the trailers again, with the whole body', async () => {
    const r = await post('trailers.example.com', '/retry/1', 'x'.repeat(100_000), { 'x-t': 'again' });
    assert.equal(r.status, 200, r.body);
    const attempts = seenAt('/retry/1');
    assert.equal(attempts.length, 2);
    for (const a of attempts) {
      assert.equal(a.body.length, 100_000);
      assert.deepEqual(a.trailers, ['x-t', 'again']);
    }
    assert.equal((await post('mirror.example.com', '/mirrored', 'body', { 'x-t': 'mirror' })).status, 200);
    const both = await eventually('the mirror request', () => Promise.resolve(seenAt('/mirrored').length === 2 ? seenAt('/mirrored') : undefined), 5000, 20);
    // The original and its mirror (Istio >= 1.28 keeps the mirror's authority: no -shadow suffix).
    for (const s of both) assert.deepEqual([s.body, s.trailers], ['body', ['x-t', 'mirror']]);
  });

  test('to an HTTP/1.1 service the trailers are dropped: a chunked body without a trailer section (no enable_trailers)', async () => {
    const r = await post('h1.example.com', '/to-h1', 'hello', { 'x-checksum': 'abc' });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(seenAt('/to-h1'), [
      { proto: '1.1', authority: 'h1.example.com', path: '/to-h1', body: 'hello', trailers: null, transferEncoding: 'chunked' },
    ]);
  });

  test('HTTP/1.1 chunked request trailers are dropped before an HTTP/2 service, the body kept', async () => {
    const r = await rawRequest(
      '127.0.0.1',
      gw.port,
      'POST /from-h1 HTTP/1.1\r\nHost: trailers.example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-h1-trailer: t\r\n\r\n',
    );
    assert.equal(r.status, 200);
    assert.deepEqual(seenAt('/from-h1'), [{ proto: '2', authority: 'trailers.example.com', path: '/from-h1', body: 'hello', trailers: null }]);
  });

  test('trailers are held to the header limits: 100 pass, 101 (max_headers_count) or a 70 KiB one reset the stream, nothing reaches the service', async () => {
    const many = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-t-${i}`, 'v']));
    const ok = await post('trailers.example.com', '/count/100', 'b', many(100));
    assert.equal(ok.status, 200);
    assert.equal(seenAt('/count/100')[0]?.trailers?.length, 200);
    const over = await post('trailers.example.com', '/count/101', 'b', many(101));
    assert.equal(over.status, 0);
    assert.equal(over.rst, constants.NGHTTP2_INTERNAL_ERROR);
    const big = await post('trailers.example.com', '/big', 'b', { 'x-big': 'b'.repeat(70 * 1024) });
    assert.equal(big.status, 0);
    assert.notEqual(big.rst ?? 0, 0);
    await new Promise((r) => setTimeout(r, 300));
    // An upstream request may have been opened, but it was reset, never completed, and had no trailers.
    for (const s of [...seenAt('/count/101'), ...seenAt('/big')]) assert.deepEqual([s.trailers, s.rst !== undefined], [null, true], JSON.stringify(s));
  });

  test('a pseudo-header in the trailers is a protocol error: RST_STREAM PROTOCOL_ERROR, nothing reaches the service', async () => {
    const sock = connect(gw.port, '127.0.0.1');
    sock.on('error', () => undefined);
    const frames: { type: number; code?: number }[] = [];
    sock.on('data', (d: Buffer) => {
      for (let b = d; b.length >= 9; b = b.subarray(9 + b.readUIntBE(0, 3)))
        frames.push({ type: b[3] as number, ...(b[3] === 3 ? { code: b.readUInt32BE(9) } : {}) });
    });
    const head = Buffer.concat(
      ['POST', 'http', '/pseudo', 'trailers.example.com'].map((v, i) => hpackLiteral([':method', ':scheme', ':path', ':authority'][i] as string, v)),
    );
    sock.write(
      Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
        h2Frame(4, 0, 0, Buffer.alloc(0)),
        h2Frame(1, 0x4, 1, head),
        h2Frame(0, 0, 1, Buffer.from('body')),
        h2Frame(1, 0x4 | 0x1, 1, hpackLiteral(':path', '/other')),
      ]),
    );
    try {
      const rst = await eventually('a RST_STREAM', () => Promise.resolve(frames.find((f) => f.type === 3)), 5000, 20);
      assert.equal(rst.code, constants.NGHTTP2_PROTOCOL_ERROR);
    } finally {
      sock.destroy();
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(seenAt('/pseudo'), []);
  });
});
