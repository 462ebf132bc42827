// common_http_protocol_options.max_connection_duration (DestinationRule connectionPool.tcp.maxConnectionDuration)
// on upstream connections, as Envoy's ActiveClient::onConnectionDurationTimeout applies it: counted from connect;
// when it passes, an idle connection closes at once, a busy one finishes its request and is then closed, never
// reused; `upstream_cx_max_duration_reached` counts each. HTTP/2: the session drains (new requests open a new one).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createH2Server, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { pino } from 'pino';
import type { Dispatcher } from 'undici';
import type { envoy } from '../../xds/envoy.ts';
import { StatsStore } from '../stats/store.ts';
import { eventually, startRawBackend, type RawBackend } from '../test/fixtures.ts';
import { Cluster, parseCluster } from './cluster.ts';
import type { PoolEvents, UpstreamPool } from './connection-pool.ts';
import { testH1Pool } from '../test/h1-pool.ts';
import { H2Pool } from './h2-pool.ts';

const backends: RawBackend[] = [];
const h2servers: Http2Server[] = [];
after(() => {
  for (const b of backends) {
    for (const s of b.sockets) s.destroy();
    b.server.close();
  }
  for (const s of h2servers) s.close();
});

/** A raw backend that answers every path at once, except `/slow`, answered after `slowMs`. */
async function backend(slowMs = 0): Promise<RawBackend> {
  const b = await startRawBackend('127.0.0.1', (path: string, s: Socket) => {
    const body = `ok ${path}`;
    const answer = (): void => void s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    if (path === '/slow') setTimeout(answer, slowMs);
    else answer();
  });
  backends.push(b);
  return b;
}

/** One request through a pool: its status and body, or the error code. */
function get(pool: UpstreamPool, path: string): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const r = { status: 0, body: '' };
    const handler: Dispatcher.DispatchHandler = {
      onResponseStart: (_c, status) => {
        r.status = status;
      },
      onResponseData: (_c, chunk) => {
        r.body += chunk.toString();
      },
      onResponseEnd: () => resolve(r),
      onResponseError: (_c, e) => resolve({ ...r, error: (e as Error & { code?: string }).code ?? e.message }),
    };
    pool.dispatch({ path, method: 'GET', headers: ['host', 'd.example.com'], body: null }, handler);
  });
}

function counting(): { events: PoolEvents; n: { connect: number; disconnect: number; maxDuration: number } } {
  const n = { connect: 0, disconnect: 0, maxDuration: 0 };
  return {
    n,
    events: {
      onConnect: () => n.connect++,
      onDisconnect: () => n.disconnect++,
      onConnectError: () => undefined,
      onMaxDurationReached: () => n.maxDuration++,
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('max_connection_duration on HTTP/1.1 upstream connections', () => {
  test('an idle connection closes as soon as the duration passes; the next request opens a new one', async () => {
    const b = await backend();
    const { events, n } = counting();
    const pool = testH1Pool(b.port, { maxConnectionDurationMs: 150, events });
    try {
      assert.deepEqual(await get(pool, '/a'), { status: 200, body: 'ok /a' });
      assert.deepEqual(await get(pool, '/b'), { status: 200, body: 'ok /b' });
      assert.equal(b.connections(), 1, 'reused within the duration');
      await eventually('the idle connection closed', () => (b.sockets.size === 0 && pool.stats.free === 0 ? true : undefined), 2000, 10);
      assert.deepEqual(n, { connect: 1, disconnect: 1, maxDuration: 1 });
      assert.deepEqual(await get(pool, '/c'), { status: 200, body: 'ok /c' });
      assert.equal(b.connections(), 2);
    } finally {
      await pool.destroy();
    }
  });

  test('a busy connection finishes its request intact, then closes instead of going back to the pool', async () => {
    const b = await backend(500);
    const { events, n } = counting();
    const pool = testH1Pool(b.port, { maxConnectionDurationMs: 100, events });
    try {
      const slow = get(pool, '/slow');
      await sleep(200);
      // The duration passed mid-request: the connection drains but the request goes on.
      assert.equal(n.maxDuration, 1);
      assert.equal(n.disconnect, 0);
      assert.equal(b.sockets.size, 1);
      assert.deepEqual(await slow, { status: 200, body: 'ok /slow' });
      await eventually('the drained connection closed', () => (b.sockets.size === 0 ? true : undefined), 2000, 10);
      assert.equal(pool.stats.free, 0, 'not returned to the pool');
      assert.deepEqual(await get(pool, '/next'), { status: 200, body: 'ok /next' });
      assert.equal(b.connections(), 2, 'the next request had a new connection');
      assert.deepEqual(n, { connect: 2, disconnect: 1, maxDuration: 1 });
    } finally {
      await pool.destroy();
    }
  });

  test('without max_connection_duration the same connection serves on', async () => {
    const b = await backend();
    const { events, n } = counting();
    const pool = testH1Pool(b.port, { events });
    try {
      await get(pool, '/a');
      await sleep(200);
      await get(pool, '/b');
      assert.equal(b.connections(), 1);
      assert.equal(n.maxDuration, 0);
    } finally {
      await pool.destroy();
    }
  });
});

describe('max_connection_duration on the HTTP/2 pool', () => {
  test('the session drains: a stream in flight completes, later requests get a new session, the old one closes', async () => {
    const sessions: ServerHttp2Session[] = [];
    const server = createH2Server();
    h2servers.push(server);
    server.on('session', (s) => sessions.push(s));
    server.on('stream', (stream, headers) => {
      const path = String(headers[':path']);
      const send = (): void => {
        if (stream.closed) return;
        stream.respond({ ':status': 200 });
        stream.end(`h2 ${path}`);
      };
      if (path === '/slow') setTimeout(send, 600);
      else send();
    });
    const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
    const { events, n } = counting();
    const pool = new H2Pool(`http://127.0.0.1:${port}`, { connectTimeoutMs: 1000, idleTimeoutMs: 10_000, maxConnectionDurationMs: 100, events });
    try {
      const slow = get(pool, '/slow');
      await sleep(200);
      assert.equal(n.maxDuration, 1);
      assert.deepEqual(await get(pool, '/next'), { status: 200, body: 'h2 /next' });
      assert.equal(sessions.length, 2, 'the request after the duration opened a new session');
      assert.equal(sessions[0]?.destroyed, false, 'the first session still carries the slow stream');
      assert.deepEqual(await slow, { status: 200, body: 'h2 /slow' });
      await eventually('the drained session closed', () => (sessions[0]?.destroyed && n.disconnect >= 1 ? true : undefined), 2000, 10);
      assert.equal(n.connect, 2);
    } finally {
      await pool.destroy();
    }
  });
});

describe('max_connection_duration on a cluster', () => {
  const cluster = (port: number, duration?: `${number}s`): envoy.config.cluster.v3.Cluster => ({
    name: 'd',
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: 'd',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
    },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        common_http_protocol_options: { idle_timeout: '10s', ...(duration ? { max_connection_duration: duration } : {}) },
        explicit_http_config: { http_protocol_options: {} },
      },
    },
  });

  test('read from the cluster (as the controller writes DestinationRule tcp.maxConnectionDuration)', () => {
    assert.equal(parseCluster(cluster(80, '1.5s')).maxConnectionDurationMs, 1500);
    assert.equal(parseCluster(cluster(80)).maxConnectionDurationMs, 0);
  });

  test('applied to the hosts pools, counted in upstream_cx_max_duration_reached', async () => {
    const b = await backend();
    const json = cluster(b.port, '0.150s');
    const store = new StatsStore();
    const c = new Cluster(parseCluster(json), json, store, { versionInfo: '1', addedViaApi: true, log: pino({ level: 'silent' }) });
    try {
      const h = c.chooseHost();
      assert.ok(h);
      assert.equal((await get(c.poolFor(h), '/a')).status, 200);
      const stat = (name: string): number => store.values[store.counter(`cluster.d.${name}`)] ?? 0;
      await eventually('the connection reached its duration', () => (stat('upstream_cx_max_duration_reached') === 1 ? true : undefined), 2000, 10);
      await eventually('and closed', () => (stat('upstream_cx_destroy') === 1 ? true : undefined), 2000, 10);
      assert.equal((await get(c.poolFor(h), '/b')).status, 200);
      assert.equal(b.connections(), 2);
    } finally {
      c.close();
    }
  });
});
