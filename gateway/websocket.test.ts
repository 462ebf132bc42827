// WebSocket upgrades through the gateway (Istio's `upgrade_configs: websocket`), and refused upgrades.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { rawRequest } from '../e2e/lib/http.ts';
import { startProxy, type Proxy } from './proxy.ts';
import { testProxyOptions } from './test/test-proxy.ts';
import { TestAdsServer } from './test/ads-server.ts';
import { routeOneHost } from './test/fixtures.ts';
import { freePort } from './test/raw-client.ts';

const HOST = 'ws.example.com';

describe('websocket upgrades', () => {
  const ads = new TestAdsServer();
  let proxy: Proxy;
  let wss: WebSocketServer;
  let port = 0;
  let seen: IncomingMessage | undefined;

  before(async () => {
    await ads.start();
    wss = new WebSocketServer({ host: '127.0.0.2', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws, req) => {
      seen = req;
      ws.on('message', (m: Buffer) => ws.send(`echo:${m.toString()}`));
    });
    port = await freePort();
    const wsPort = (wss.address() as { port: number }).port;
    routeOneHost(ads, { port, host: HOST, endpoints: [{ ip: '127.0.0.2', port: wsPort }] });
    proxy = await startProxy(testProxyOptions(ads));
    await proxy.ready;
  });

  after(async () => {
    await proxy?.close();
    await ads.stop();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  });

  test('the upgrade is forwarded with Istio headers, the 101 comes back rewritten, frames flow both ways', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`, { headers: { Host: HOST } });
    const upgrade = new Promise<IncomingMessage>((r) => ws.once('upgrade', r));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const res = await upgrade;
    assert.equal(res.statusCode, 101);
    assert.equal(res.headers.server, 'istio-envoy');
    assert.match(String(res.headers['x-envoy-upstream-service-time']), /^\d+$/);
    assert.equal(res.headers.upgrade, 'websocket');
    const reply = new Promise<string>((r) => ws.once('message', (m: Buffer) => r(m.toString())));
    ws.send('hello');
    assert.equal(await reply, 'echo:hello');
    const big = 'x'.repeat(70_000);
    const bigReply = new Promise<string>((r) => ws.once('message', (m: Buffer) => r(m.toString())));
    ws.send(big);
    assert.equal(await bigReply, `echo:${big}`);
    ws.close();
    assert.equal(seen?.headers['x-forwarded-proto'], 'http');
    assert.equal(seen?.headers['x-envoy-attempt-count'], '1');
    assert.equal(seen?.headers.connection, 'Upgrade');
  });

  test('an upgrade type that is not configured gets 403 and the connection closes', async () => {
    const r = await rawRequest('127.0.0.1', port, `GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n`);
    assert.equal(r.statusLine, 'HTTP/1.1 403 Forbidden');
    assert.deepEqual(
      r.headers.map(([k]) => k),
      ['date', 'server', 'connection', 'content-length'],
    );
  });

  test('Upgrade: h2c is ignored: a plain HTTP/1.1 request', async () => {
    const r = await rawRequest(
      '127.0.0.1',
      port,
      `GET /nope HTTP/1.1\r\nHost: other\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`,
    );
    assert.equal(r.statusLine, 'HTTP/1.1 404 Not Found');
  });
});
