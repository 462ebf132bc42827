// A response the router paused (downstream backpressure) that then ends must not leave the pooled socket
// paused: the client whose drain would have resumed it may be gone, and the next request on that keep-alive
// connection would never be answered (seen under wrk load as new connections hanging after the load stopped).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Dispatcher } from 'undici';
import { testH1Pool } from '../test/h1-pool.ts';

test('a response paused by the router and then ended leaves the connection usable for the next request', async () => {
  let connections = 0;
  const server = createServer((s) => {
    connections++;
    s.on('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  const pool = testH1Pool(port);
  const run = (pauseOnData: boolean): Promise<string> =>
    new Promise((resolve, reject) => {
      let body = '';
      const timer = setTimeout(() => reject(new Error('no response within 2 s')), 2000);
      const handler: Dispatcher.DispatchHandler = {
        onResponseData: (c: Dispatcher.DispatchController, chunk: Buffer) => {
          body += chunk.toString();
          // The downstream said "wait for drain", and that drain never comes (client gone).
          if (pauseOnData) c.pause();
        },
        onResponseEnd: () => {
          clearTimeout(timer);
          resolve(body);
        },
        onResponseError: (_c: Dispatcher.DispatchController, e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      pool.dispatch({ path: '/', method: 'GET', headers: ['host', 'a'], body: null }, handler);
    });
  try {
    assert.equal(await run(true), 'ok');
    assert.equal(await run(false), 'ok');
    assert.equal(connections, 1, 'the second request reused the keep-alive connection');
  } finally {
    await pool.destroy();
    server.close();
  }
});

test('a response that ends while the request body is still being sent closes the connection instead of reusing it', async () => {
  const seen: string[] = [];
  const server = createServer((s) => {
    let answered = false;
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (!answered && buf.includes('\r\n\r\n')) {
        answered = true;
        seen.push(buf.slice(0, buf.indexOf('\r\n')));
        s.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n');
      }
    });
    s.on('error', () => undefined);
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  const pool = testH1Pool(port);
  let release: (() => void) | undefined;
  async function* slowBody(): AsyncGenerator<Buffer> {
    yield Buffer.from('first part ');
    await new Promise<void>((r) => (release = r));
    yield Buffer.from('LATE BYTES');
  }
  const run = (path: string, body: AsyncIterable<Buffer> | null): Promise<number> =>
    new Promise((resolve, reject) => {
      let status = 0;
      const timer = setTimeout(() => reject(new Error('no response within 2 s')), 2000);
      pool.dispatch(
        { path, method: 'POST', headers: ['host', 'a'], body },
        {
          onResponseStart: (_c: Dispatcher.DispatchController, s: number) => {
            status = s;
          },
          onResponseEnd: () => {
            clearTimeout(timer);
            resolve(status);
          },
          onResponseError: (_c: Dispatcher.DispatchController, e: Error) => {
            clearTimeout(timer);
            reject(e);
          },
        },
      );
    });
  try {
    assert.equal(await run('/one', slowBody()), 413);
    release?.();
    assert.equal(await run('/two', null), 413);
    // The second request went out on a new connection, as a clean request line (not after 'LATE BYTES').
    assert.deepEqual(seen, ['POST /one HTTP/1.1', 'POST /two HTTP/1.1']);
  } finally {
    await pool.destroy();
    server.close();
  }
});
