// HTTP/2 and gRPC through the gateway in local mode: real @grpc/grpc-js clients and servers (h2c with prior
// knowledge to the gateway, HTTP/2 to a Service port named `grpc`), node:http2 and curl for plain HTTP/2.
// Unary, the three streaming kinds, metadata and trailers both ways, large messages, server errors, deadlines,
// and Envoy's gRPC local replies (no route, no healthy upstream).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { connect as h2connect, constants, createServer as createH2Server, type IncomingHttpHeaders } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { EchoClient, cancelled, echoServer, type Echo } from '../lib/grpc-echo.ts';
import { eventually, freePort } from '../lib/process.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

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
