// A request cancelled while queued for a connection (issue 11 item 2), and exceptions thrown by a request's
// own callbacks: neither may reach the event loop. Envoy cancels a pending request without touching any
// connection (ConnPoolImplBase pending list), and an error in one stream ends that stream only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer } from '../test/ads-server.ts';
import { edsCluster, eventually, routeOneHost, startRawBackend, type RawBackend } from '../test/fixtures.ts';
import { RawConnection, freePort } from '../test/raw-client.ts';
import { get, rawRequest } from '../../e2e/lib/http.ts';
import { H1Pool } from './h1-pool.ts';

const HOST = 'queued.example.com';
const CLUSTER = 'outbound|80||queued.default.svc.cluster.local';

/** A backend answering `/hold/*` only when released, everything else at once; counts its connections. */
async function holdingBackend(host: string): Promise<RawBackend & { release: () => void }> {
  const held: (() => void)[] = [];
  const b = await startRawBackend(host, (path, s) => {
    const answer = (): void => void s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${path.length}\r\n\r\n${path}`);
    if (path.startsWith('/hold/')) held.push(answer);
    else answer();
  });
  return { ...b, release: () => held.splice(0).forEach((f) => f()) };
}

describe('connectionPool.tcp.maxConnections 1: a queued request whose client disconnects', () => {
  const ads = new TestAdsServer();
  let proxy: Proxy;
  let port = 0;
  let backend: Awaited<ReturnType<typeof holdingBackend>>;

  /** A gauge of the cluster (its stats use alt_stat_name `<name>;`, as istiod sets it). */
  const clusterStat = async (stat: string): Promise<number> => {
    const r = await rawRequest('127.0.0.1', proxy.ports.admin, `GET /stats?filter=${stat} HTTP/1.1\r\nHost: admin\r\n\r\n`);
    const line = r.body
      .toString()
      .split('\n')
      .find((l) => l.startsWith(`cluster.${CLUSTER};.${stat}: `));
    return line ? Number(line.split(': ')[1]) : -1;
  };

  before(async () => {
    backend = await holdingBackend('127.0.0.2');
    await ads.start();
    port = await freePort();
    // DestinationRule trafficPolicy.connectionPool.tcp.maxConnections: 1, as istiod writes it.
    routeOneHost(ads, {
      port,
      host: HOST,
      cluster: edsCluster(CLUSTER, {
        circuit_breakers: {
          thresholds: [{ max_connections: 1, max_pending_requests: 4294967295, max_requests: 4294967295, max_retries: 4294967295, track_remaining: false }],
        },
      }),
      endpoints: [{ ip: '127.0.0.2', port: backend.port }],
    });
    proxy = await startTestProxy(ads, { fastPath: false });
    await eventually('route', async () => ((await get('127.0.0.1', port, '/warmup', HOST)).status === 200 ? true : undefined));
  });

  after(async () => {
    await proxy?.close();
    await ads.stop();
    for (const s of backend?.sockets ?? []) s.destroy();
    backend?.server.close();
  });

  test('the first request completes, the process survives, and the upstream connection is kept', async () => {
    const connectionsBefore = backend.connections();
    const a = await RawConnection.open('127.0.0.1', port);
    try {
      const first = a.request(`GET /hold/a HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      await eventually('the held request at the backend', () => (backend.seen.includes('/hold/a') ? true : undefined));
      // The second request waits for the only connection; then its client goes away (a client timeout).
      const b = connect({ host: '127.0.0.1', port });
      b.on('error', () => undefined);
      b.write(`GET /queued HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      await eventually('the second request queued', async () => ((await clusterStat('upstream_rq_pending_active')) === 1 ? true : undefined));
      b.destroy();
      await eventually('the queued request cancelled', async () => ((await clusterStat('upstream_rq_pending_active')) === 0 ? true : undefined));
      backend.release();
      const r = await first;
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), '/hold/a');
      // The gateway still serves, on the same upstream connection: the cancelled request cost no connection.
      const next = await a.request(`GET /after HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      assert.equal(next.body.toString(), '/after');
      assert.equal(backend.connections(), connectionsBefore === 0 ? 1 : connectionsBefore);
      assert.ok(!backend.seen.includes('/queued'), 'the cancelled request never reached the backend');
    } finally {
      a.close();
    }
  });
});

describe("H1Pool: an exception thrown by one request's callbacks ends that request only", () => {
  let backend: Awaited<ReturnType<typeof holdingBackend>>;
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => void uncaught.push(e);
  before(async () => {
    backend = await holdingBackend('127.0.0.1');
    process.on('uncaughtException', onUncaught);
  });
  after(() => {
    process.off('uncaughtException', onUncaught);
    for (const s of backend.sockets) s.destroy();
    backend.server.close();
  });

  function pool(logs: string[]): H1Pool {
    const log = { error: (o: { where: string; err: Error }, msg: string) => logs.push(`${msg} [${o.where}] ${o.err.message}`) } as unknown as Logger;
    return new H1Pool('127.0.0.1', backend.port, {
      connectTimeoutMs: 1000,
      idleTimeoutMs: 10_000,
      maxRequestsPerConnection: 0,
      maxConnections: 1,
      events: { onConnect: () => undefined, onDisconnect: () => undefined, onConnectError: () => undefined },
      log,
    });
  }

  /** Dispatches one GET; `throwIn` names the callback that throws. Resolves with the outcome. */
  function run(p: H1Pool, path: string, throwIn?: 'onRequestStart' | 'onResponseStart' | 'onResponseData' | 'onResponseEnd'): Promise<string> {
    return new Promise((resolve) => {
      let body = '';
      const boom = (where: string): void => {
        if (throwIn === where) {
          if (where === 'onResponseEnd') setImmediate(() => resolve('ended, then threw'));
          throw new Error(`bug in ${where}`);
        }
      };
      const h: Dispatcher.DispatchHandler = {
        onRequestStart: () => boom('onRequestStart'),
        onResponseStart: () => boom('onResponseStart'),
        onResponseData: (_c, chunk) => {
          boom('onResponseData');
          body += chunk.toString();
        },
        onResponseEnd: () => {
          boom('onResponseEnd');
          resolve(`200 ${body}`);
        },
        onResponseError: (_c, e) => resolve(`error: ${e.message}`),
      };
      p.dispatch({ path, method: 'GET', headers: ['host', 'x'], body: null }, h);
    });
  }

  const cases: ['onRequestStart' | 'onResponseStart' | 'onResponseData' | 'onResponseEnd', string][] = [
    ['onRequestStart', 'error: bug in onRequestStart'],
    ['onResponseStart', 'error: bug in onResponseStart'],
    ['onResponseData', 'error: bug in onResponseData'],
    ['onResponseEnd', 'ended, then threw'],
  ];
  for (const [where, outcome] of cases) {
    test(`${where} throws: that request ends (${outcome}), one log line, the next request is served`, async () => {
      const logs: string[] = [];
      const p = pool(logs);
      try {
        // With one connection allowed, the failing request and the next one share it or queue behind it.
        const [bad, good] = await Promise.all([run(p, `/x/${where}`, where), run(p, `/next/${where}`)]);
        assert.equal(bad, outcome);
        assert.equal(good, `200 /next/${where}`);
        // Exceptions from the response callbacks are caught where the response is parsed.
        const at = where === 'onResponseStart' || where === 'onResponseData' ? 'response callback' : where;
        assert.deepEqual(logs, [`exception in an upstream request callback: that request was reset [${at}] bug in ${where}`]);
        assert.deepEqual(uncaught, []);
      } finally {
        await p.destroy();
      }
    });
  }
});
