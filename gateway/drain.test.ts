// Graceful drain (Envoy's immediate drain strategy) and `meshgate proxy` on SIGTERM.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect as h2connect } from 'node:http2';
import { join } from 'node:path';
import { rawRequest } from '../e2e/lib/http.ts';
import { adminPorts } from '../e2e/lib/process.ts';
import { startProxy } from './proxy.ts';
import { testProxyOptions } from './test/test-proxy.ts';
import { TestAdsServer } from './test/ads-server.ts';
import { eventually, routeOneHost, startEchoBackend } from './test/fixtures.ts';
import { RawConnection, freePort } from './test/raw-client.ts';

const HOST = 'httpbin.example.com';

async function configure(ads: TestAdsServer, port: number, backendPort: number): Promise<void> {
  routeOneHost(ads, { port, host: HOST, endpoints: [{ ip: '127.0.0.2', port: backendPort }] });
  await Promise.resolve();
}

describe('drain', () => {
  // With two workers the connections land on either of them; every worker drains alike.
  for (const concurrency of [1, 2]) {
    test(`drain() with ${concurrency} worker(s): idle keep-alive connections close, an in-flight response carries connection: close, then the listener stops`, async () => {
      const ads = new TestAdsServer();
      await ads.start();
      const be = await startEchoBackend('127.0.0.2', 'slow', (req) => (req.url === '/slow' ? { delayMs: 300 } : undefined));
      const port = await freePort();
      await configure(ads, port, be.port);
      const proxy = await startProxy(testProxyOptions(ads, { drainSeconds: 2, concurrency }));
      let idle: RawConnection | undefined;
      let busy: RawConnection | undefined;
      try {
        await proxy.ready;
        idle = await RawConnection.open('127.0.0.1', port);
        busy = await RawConnection.open('127.0.0.1', port);
        assert.equal((await idle.request(`GET /fast HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)).status, 200);
        const slow = busy.request(`GET /slow HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
        await new Promise((r) => setTimeout(r, 50));
        const started = Date.now();
        const drained = proxy.drain();
        assert.ok(await idle.waitClosed(1000), 'the idle connection was closed');
        const r = await slow;
        assert.equal(r.status, 200);
        assert.equal(r.header('connection'), 'close');
        assert.ok(await busy.waitClosed(1000));
        await drained;
        assert.ok(Date.now() - started < 1900, 'drain ended early once no connection was left');
        await assert.rejects(rawRequest('127.0.0.1', port, `GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, { timeoutMs: 1000 }));
        assert.equal((await rawRequest('127.0.0.1', proxy.ports.admin, 'GET /ready HTTP/1.1\r\nHost: x\r\n\r\n')).body.toString(), 'DRAINING\n');
      } finally {
        idle?.close();
        busy?.close();
        await proxy.close();
        await ads.stop();
        be.server.close();
        be.server.closeAllConnections();
      }
    });
  }

  test('drain() with HTTP/2: the session gets GOAWAY, its in-flight stream finishes, no new stream is served', async () => {
    const ads = new TestAdsServer();
    await ads.start();
    const be = await startEchoBackend('127.0.0.2', 'slow', (req) => (req.url === '/slow' ? { delayMs: 300 } : undefined));
    const port = await freePort();
    await configure(ads, port, be.port);
    const proxy = await startProxy(testProxyOptions(ads, { drainSeconds: 2, concurrency: 1 }));
    await proxy.ready;
    const session = h2connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      const get = (path: string): Promise<number> =>
        new Promise((resolve, reject) => {
          const req = session.request({ ':path': path, ':authority': HOST });
          let status = 0;
          req.on('response', (h) => (status = Number(h[':status'])));
          req.on('data', () => undefined);
          req.on('end', () => resolve(status));
          req.on('error', reject);
          req.end();
        });
      assert.equal(await get('/fast'), 200);
      const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
      const slow = get('/slow');
      await new Promise((r) => setTimeout(r, 50));
      const drained = proxy.drain();
      assert.equal(await goaway, 0, 'GOAWAY with NO_ERROR');
      assert.equal(await slow, 200, 'the stream in flight finished');
      // No new stream after GOAWAY: the session is closing (node refuses to open one).
      await assert.rejects(async () => get('/after'), /destroyed|GOAWAY|closed/);
      await drained;
    } finally {
      session.destroy();
      await proxy.close();
      await ads.stop();
      be.server.close();
      be.server.closeAllConnections();
    }
  });

  test('meshgate proxy: --help documents the chart flags; SIGTERM drains and exits 0', async () => {
    const bin = join(import.meta.dirname, '..', 'bin', 'meshgate');
    const help = spawn(bin, ['proxy', '--help']);
    let out = '';
    help.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const helpCode = await new Promise<number | null>((r) => help.on('exit', r));
    assert.equal(helpCode, 0);
    for (const f of ['--xds-address', '--admin-port', '--status-port', '--metrics-port', '--concurrency', '--drain-seconds', '--access-log'])
      assert.ok(out.includes(f), f);

    const ads = new TestAdsServer();
    await ads.start();
    const be = await startEchoBackend('127.0.0.2', 'v1');
    const port = await freePort();
    await configure(ads, port, be.port);
    const { status, flags } = await adminPorts();
    const child = spawn(bin, ['proxy', '--xds-address', ads.address, ...flags, '--drain-seconds', '1', '--listen-host', '127.0.0.1', '--concurrency', ''], {
      env: {
        ...process.env,
        POD_NAME: 'gw-1',
        POD_NAMESPACE: 'istio-system',
        INSTANCE_IP: '127.0.0.1',
        MESHGATE_LOG_PRETTY: '0',
        MESHGATE_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    try {
      await eventually(
        'readiness on the status port',
        async () => ((await rawRequest('127.0.0.1', status, 'GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\n')).status === 200 ? true : undefined),
        15_000,
        100,
      );
      const node = ads.requests.find((r) => r.node)?.node;
      assert.equal(node?.id, 'router~127.0.0.1~gw-1.istio-system~istio-system.svc.cluster.local');
      assert.equal((await rawRequest('127.0.0.1', port, `GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)).status, 200);
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 5000))]);
      assert.equal(code, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await ads.stop();
      be.server.close();
      be.server.closeAllConnections();
    }
  });
});
