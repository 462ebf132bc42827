import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { H1Pool } from './h1-pool.ts';
import { noPoolEvents, testH1Pool } from '../test/h1-pool.ts';

/** A scripted upstream: records the bytes of each request and answers with the next canned response. */
function scripted(responses: ((req: string) => string | Buffer | null)[]): Promise<{ server: Server; port: number; requests: string[]; sockets: Socket[] }> {
  const requests: string[] = [];
  const sockets: Socket[] = [];
  let i = 0;
  const server = createServer((s) => {
    sockets.push(s);
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end + 4);
        let total = head.length;
        const cl = /\r\ncontent-length: (\d+)/i.exec(head);
        if (cl) total += Number(cl[1]);
        else if (/transfer-encoding: chunked/i.test(head)) {
          const z = buf.indexOf('0\r\n\r\n', end);
          if (z < 0) return;
          total = z + 5;
        }
        if (buf.length < total) return;
        const req = buf.slice(0, total);
        buf = buf.slice(total);
        requests.push(req);
        const r = responses[i++]?.(req);
        if (r === null) s.destroy();
        else if (r !== undefined) {
          s.write(r);
          if (r.toString().includes('Connection: close')) s.end();
        }
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port, requests, sockets })),
  );
}

interface Result {
  status: number;
  headers: string[];
  body: string;
  error?: Error & { code?: string };
}

function run(pool: H1Pool, o: { path?: string; method?: string; headers?: string[]; body?: AsyncIterable<Buffer> | null }): Promise<Result> {
  return new Promise((resolve) => {
    const r: Result = { status: 0, headers: [], body: '' };
    const handler: Dispatcher.DispatchHandler = {
      onResponseStart: (c, status) => {
        r.status = status;
        r.headers = (c.rawHeaders as string[] | null) ?? [];
      },
      onResponseData: (_c, chunk) => {
        r.body += chunk.toString();
      },
      onResponseEnd: () => resolve(r),
      onResponseError: (_c, e) => {
        r.error = e;
        resolve(r);
      },
    };
    pool.dispatch({ path: o.path ?? '/', method: o.method ?? 'GET', headers: o.headers ?? ['host', 'a.example.com'], body: o.body ?? null }, handler);
  });
}

async function* chunks(...parts: string[]): AsyncIterable<Buffer> {
  for (const p of parts) {
    await new Promise((r) => setImmediate(r));
    yield Buffer.from(p);
  }
}

describe('HTTP/1.1 upstream pool', () => {
  let up: Awaited<ReturnType<typeof scripted>>;
  before(async () => {
    up = await scripted([
      () => 'HTTP/1.1 200 Fine\r\nContent-Length: 2\r\nServer: x\r\n\r\nok',
      () => 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: t\r\n\r\n',
      () => 'HTTP/1.1 204 No Content\r\n\r\n',
      () => 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n',
      () => 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close',
    ]);
  });
  after(() => {
    for (const s of up.sockets) s.destroy();
    up.server.close();
  });

  test('writes the head exactly as given (no connection header added), reuses the connection, parses every framing', async () => {
    let connects = 0;
    const pool = testH1Pool(up.port, { events: { ...noPoolEvents, onConnect: () => connects++ } });
    const a = await run(pool, { headers: ['host', 'a.example.com', 'x-request-id', 'id'] });
    assert.equal(up.requests[0], 'GET / HTTP/1.1\r\nhost: a.example.com\r\nx-request-id: id\r\n\r\n');
    assert.deepEqual([a.status, a.headers, a.body], [200, ['Content-Length', '2', 'Server', 'x'], 'ok']);
    const b = await run(pool, { method: 'POST', path: '/p', body: chunks('he', 'llo') });
    assert.equal(up.requests[1], 'POST /p HTTP/1.1\r\nhost: a.example.com\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n');
    assert.deepEqual([b.status, b.body], [201, 'abcde']);
    const c = await run(pool, {});
    assert.deepEqual([c.status, c.body], [204, '']);
    const d = await run(pool, { method: 'HEAD' });
    assert.deepEqual([d.status, d.body], [200, '']);
    const e = await run(pool, { headers: ['host', 'h', 'content-length', '3'], method: 'PUT', body: chunks('xyz') });
    assert.equal(up.requests[4], 'PUT / HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\n\r\nxyz');
    assert.deepEqual([e.status, e.body], [200, 'until close']);
    assert.equal(connects, 1, 'one keep-alive connection served all five requests');
    await pool.destroy();
  });

  test('connection refused and an upstream that closes early are reported with their codes', async () => {
    const closed = await scripted([() => null]);
    const port = closed.port;
    const early = testH1Pool(port, { idleTimeoutMs: 1000 });
    assert.equal((await run(early, {})).error?.code, 'UND_ERR_SOCKET');
    closed.server.close();
    await new Promise((r) => setTimeout(r, 20));
    let failures = 0;
    const refused = testH1Pool(port, { idleTimeoutMs: 1000, events: { ...noPoolEvents, onConnectError: () => failures++ } });
    assert.equal((await run(refused, {})).error?.code, 'ECONNREFUSED');
    assert.equal(failures, 1);
  });

  test('max connections queues requests until a connection is free', async () => {
    const slow = await scripted([() => 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1', () => 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2']);
    try {
      const pool = testH1Pool(slow.port, { idleTimeoutMs: 1000, maxConnections: 1 });
      const [x, y] = await Promise.all([run(pool, {}), run(pool, {})]);
      assert.deepEqual([x.body, y.body], ['1', '2']);
      assert.equal(slow.sockets.length, 1);
      await pool.destroy();
    } finally {
      for (const s of slow.sockets) s.destroy();
      slow.server.close();
    }
  });

  test('idle_timeout: a connection idle that long closes; one reused in between is timed from its last release', async () => {
    const ok = (): string => 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1';
    const up2 = await scripted([ok, ok]);
    try {
      let disconnects = 0;
      const pool = testH1Pool(up2.port, { idleTimeoutMs: 150, events: { ...noPoolEvents, onDisconnect: () => disconnects++ } });
      await run(pool, {});
      await new Promise((r) => setTimeout(r, 100));
      await run(pool, {});
      // 200 ms after the first release, 100 ms after the second: still open.
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(disconnects, 0, 'reused before the timeout: not closed');
      assert.equal(pool.stats.free, 1);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(disconnects, 1, 'idle past the timeout: closed');
      assert.equal(pool.stats.free, 0);
      assert.equal(up2.sockets.length, 1);
      await pool.destroy();
    } finally {
      for (const s of up2.sockets) s.destroy();
      up2.server.close();
    }
  });
});
