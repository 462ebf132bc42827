// The worker pool with real worker threads: config applied in a worker serves traffic on its own socket,
// a rejected resource is reported, and a worker that dies is replaced with the current configuration.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../xds/type-urls.ts';
import { assignment, edsCluster, gatewayListener, istioRoute, routeConfig } from '../test/fixtures.ts';
import { createDataPlane, type DataPlane, type Update } from '../data-plane.ts';
import type { envoy } from '../../xds/envoy.ts';
import { SharedCounters } from './shared-counters.ts';
import { WorkerPool } from './worker-pool.ts';
import { freePort } from '../../e2e/lib/process.ts';

const C = 'outbound|80||app.default.svc.cluster.local';

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host: 'app.example.com', connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function eventually<T>(fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const servers: Server[] = [];
let pool: WorkerPool | undefined;
let main: DataPlane | undefined;
after(async () => {
  await pool?.close();
  main?.close();
  for (const s of servers) s.close();
});

test('a worker thread serves the config it is given, reports rejections, and is replaced with that config when it dies', async () => {
  const backend = createServer((_req, res) => res.end('from backend'));
  servers.push(backend);
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const bport = (backend.address() as { port: number }).port;
  const port = await freePort();
  // The main thread's data plane binds 127.0.0.2, the worker 127.0.0.1: an answer on 127.0.0.1 is the worker's.
  const log = pino({ level: 'silent' });
  const dp = createDataPlane({
    log,
    listenHost: '127.0.0.2',
    drainMs: 0,
    accessLog: undefined,
    dnsServer: undefined,
    localAddress: '127.0.0.1',
    reusePort: true,
    worker: 0,
  });
  main = dp;
  const workers = new WorkerPool(
    1,
    {
      listenHost: '127.0.0.1',
      drainMs: 0,
      accessLog: false,
      dnsServer: undefined,
      localAddress: '127.0.0.1',
      logLevel: 'silent',
      sharedCounters: new SharedCounters(64).buffer,
    },
    log,
    () => dp.current(),
  );
  pool = workers;
  // As the proxy does: the workers first, then the main thread.
  const apply = async (...update: Update): Promise<string[]> => [...(await workers.apply(update)), ...(await dp.apply(update)).errors];

  assert.deepEqual(await apply(CLUSTER_TYPE, [edsCluster(C)], '1'), []);
  assert.deepEqual(await apply(ENDPOINT_TYPE, [assignment(C, [{ ip: '127.0.0.1', port: bport }])], '1'), []);
  assert.deepEqual(await apply(LISTENER_TYPE, [gatewayListener(port)], '1'), []);
  assert.deepEqual(await apply(ROUTE_TYPE, [routeConfig(`http.${port}`, [{ name: 'app', domains: ['*'], routes: [istioRoute('/', C)] }])], '1'), []);
  // Only the worker listens on this port: an answer is the worker's.
  assert.deepEqual(await get(port), { status: 200, body: 'from backend' });
  const [share] = await workers.stats();
  assert.equal(share?.find((s) => s.name === `listener.0.0.0.0_${port}.worker_1.downstream_cx_total`)?.value, 1);

  // A listener the worker cannot use is rejected with the same reason by both; the serving config stays.
  // (Ill-typed on purpose: the ADS decoder never produces such a port, a hand-made update can.)
  const bad = {
    ...gatewayListener(port),
    address: { socket_address: { address: '0.0.0.0', port_value: 'x' } },
  } as unknown as envoy.config.listener.v3.Listener;
  const errors = await apply(LISTENER_TYPE, [bad], '2');
  assert.equal(errors.length, 2, JSON.stringify(errors));
  assert.equal(errors[0], errors[1]);
  assert.equal((await get(port)).status, 200);

  // The worker dies: a new one takes its place with the configuration the main thread accepted (the good
  // listener, not the rejected one) and serves again.
  const slots = (workers as unknown as { slots: { worker: Worker }[] }).slots;
  const dead = slots[0]?.worker;
  await dead?.terminate();
  const answer = await eventually(async () => {
    if (slots[0]?.worker === dead) return undefined;
    const r = await get(port);
    return r.status === 200 ? r : undefined;
  });
  assert.equal(answer.body, 'from backend');
});
