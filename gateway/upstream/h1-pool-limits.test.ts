// Cluster-wide max_connections across per-host pools (Envoy's ResourceManager): a pool opens another
// connection only while the cluster has room, except that a pool with no connection always opens one.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Dispatcher } from 'undici';
import type { H1Pool } from './h1-pool.ts';
import { testH1Pool } from '../test/h1-pool.ts';

const servers: Server[] = [];
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

async function slowServer(delayMs: number): Promise<{ port: number; maxSockets: () => number }> {
  let open = 0;
  let max = 0;
  const s = createServer((_req, res) => setTimeout(() => res.end('ok'), delayMs));
  s.on('connection', (sock) => {
    open++;
    max = Math.max(max, open);
    sock.on('close', () => open--);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return { port: (s.address() as { port: number }).port, maxSockets: () => max };
}

function get(pool: H1Pool): Promise<number> {
  return new Promise((resolve) => {
    let status = 0;
    const h: Dispatcher.DispatchHandler = {
      onResponseStart: (_c, s) => {
        status = s;
      },
      onResponseData: () => undefined,
      onResponseEnd: () => resolve(status),
      onResponseError: () => resolve(-1),
    };
    pool.dispatch({ path: '/', method: 'GET', headers: ['host', 'x'], body: null }, h);
  });
}

test('max_connections 1 shared by two hosts: the idle host still opens its first connection; the busy one queues', async () => {
  const A = await slowServer(150);
  const B = await slowServer(150);
  const pools: H1Pool[] = [];
  const canCreate = (): boolean => pools.reduce((n, p) => n + p.size, 0) < 1;
  const mk = (port: number): H1Pool => testH1Pool(port, { maxConnections: 1, canCreateConnection: canCreate });
  const a = mk(A.port);
  const b = mk(B.port);
  pools.push(a, b);
  const a1 = get(a);
  const b1 = get(b);
  assert.equal(b.size, 1, 'a pool without connections opens one even when the cluster is at its limit');
  const a2 = get(a);
  assert.equal(a.pending, 1, 'the second request to the busy host waits');
  assert.deepEqual(await Promise.all([a1, b1, a2]), [200, 200, 200]);
  assert.equal(A.maxSockets(), 1);
  await a.close();
  await b.close();
});

test('without a cluster limit each host pool opens connections as needed', async () => {
  const A = await slowServer(100);
  const a = testH1Pool(A.port);
  const rs = await Promise.all([get(a), get(a), get(a)]);
  assert.deepEqual(rs, [200, 200, 200]);
  assert.equal(A.maxSockets(), 3);
  await a.close();
});
