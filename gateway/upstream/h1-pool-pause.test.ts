// A response the router paused (downstream backpressure) that then ends must not leave the pooled socket
// paused: the client whose drain would have resumed it may be gone, and the next request on that keep-alive
// connection would never be answered (seen under wrk load as new connections hanging after the load stopped).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Dispatcher } from 'undici';
import { H1Pool } from './h1-pool.ts';

test('a response paused by the router and then ended leaves the connection usable for the next request', async () => {
  let connections = 0;
  const server = createServer((s) => {
    connections++;
    s.on('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  const pool = new H1Pool('127.0.0.1', port, {
    connectTimeoutMs: 1000,
    idleTimeoutMs: 10_000,
    maxRequestsPerConnection: 0,
    events: { onConnect: () => undefined, onDisconnect: () => undefined, onConnectError: () => undefined },
  });
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
