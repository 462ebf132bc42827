// A bug met while serving one request ends that request's connection with a log line; the thread, the
// listener and every other connection keep going. Provoked by making ActiveStream#start throw for one path,
// through real sockets on both downstream paths.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer } from '../test/ads-server.ts';
import { routeOneHost, startEchoBackend } from '../test/fixtures.ts';
import { exchange, freePort } from '../test/raw-client.ts';
import { ActiveStream } from './active-stream.ts';

const HOST = 'boundary.test';

for (const fastPath of [true, false]) {
  describe(`error boundary (${fastPath ? 'fast path' : 'node:http'})`, () => {
    let ads: TestAdsServer;
    let proxy: Proxy;
    let port: number;
    let backend: Awaited<ReturnType<typeof startEchoBackend>>;
    const start = Object.getOwnPropertyDescriptor(ActiveStream.prototype, 'start')?.value as (this: ActiveStream) => void;

    before(async () => {
      backend = await startEchoBackend('127.0.0.2', 'echo');
      ads = new TestAdsServer();
      await ads.start();
      port = await freePort();
      routeOneHost(ads, { port, host: HOST, endpoints: [{ ip: '127.0.0.2', port: backend.port }] });
      proxy = await startTestProxy(ads, { fastPath });
      ActiveStream.prototype.start = function (this: ActiveStream): void {
        if ((this as unknown as { info: { url: string } }).info.url === '/boom') throw new Error('injected bug');
        start.call(this);
      };
    });

    after(async () => {
      ActiveStream.prototype.start = start;
      await proxy?.close();
      await ads?.stop();
      backend?.server.close();
      backend?.server.closeAllConnections();
    });

    test('the request that hits the bug is reset; the thread and other connections keep serving', async () => {
      const bad = await exchange(port, [`GET /boom HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`], { idleMs: 300 });
      assert.equal(bad.bytes, '');
      assert.ok(bad.closed);
      // A pipelined request after the bug is not served either (its connection is gone).
      const pipelined = await exchange(port, [`GET /boom HTTP/1.1\r\nHost: ${HOST}\r\n\r\nGET /fine HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`], { idleMs: 300 });
      assert.equal(pipelined.bytes, '');
      const good = await exchange(port, [`GET /fine HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`], { idleMs: 300 });
      assert.match(good.bytes, /^HTTP\/1\.1 200 OK\r\n/);
    });
  });
}
