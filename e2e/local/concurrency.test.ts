// --concurrency (issue 7): `meshgate local --concurrency 2` serves every listener from two workers (the main
// thread and a worker thread bound to the same port with SO_REUSEPORT). The kernel spreads new connections
// over both; stats, /clusters and the Prometheus endpoint count every worker's traffic once; a config push
// reaches every worker before the main thread (what admin shows) has it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, freePort } from '../lib/process.ts';
import { get, rawRequest } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, type Gateway } from '../lib/gateway.ts';

const GW = '127.0.0.1';
const HOST = 'workers.example.com';
const vs = (prefix: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: workers, namespace: default}
spec:
  hosts: [${HOST}]
  gateways: [workers-gateway]
  http:
  - match: [{uri: {prefix: ${prefix}}}]
    route: [{destination: {host: app}}]
`;

describe('local mode: two workers (--concurrency 2)', () => {
  let gw: Gateway;
  let backend: Backend;
  let bport: number;
  const N = 40;

  before(async () => {
    bport = await freePort();
    backend = await startBackend('127.0.12.1', bport, 'app');
    // The cluster stats on 15090 beyond Istio's inclusion list, as an Istio user asks for them (proxyStatsMatcher).
    gw = await startGateway({ concurrency: 2, accessLog: true, args: ['--proxy-config', '{"proxyStatsMatcher":{"inclusionPrefixes":["cluster.outbound"]}}'] });
    gw.write('10-gateway.yaml', gatewayYaml('workers-gateway', [HOST]));
    gw.write('20-app.yaml', serviceYaml('app', bport, [{ ip: '127.0.12.1' }]));
    gw.write('30-vs.yaml', vs('/one'));
    await eventually('the route to be served', async () => ((await get(GW, gw.port, '/one', HOST)).status === 200 ? true : undefined), 15_000, 100);
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
  });

  test('server.concurrency and /server_info report two workers', async () => {
    assert.equal(await gw.stat('server.concurrency'), 2);
    const info = JSON.parse(await gw.adminGet('/server_info')) as { command_line_options: { concurrency: number } };
    assert.equal(info.command_line_options.concurrency, 2);
  });

  test('connections are spread over both workers and every request is counted once', async () => {
    assert.equal((await rawRequest('127.0.0.1', gw.admin, 'POST /reset_counters HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n')).status, 200);
    const before0 = await gw.stat(`listener.0.0.0.0_${gw.port}.worker_0.downstream_cx_total`);
    const before1 = await gw.stat(`listener.0.0.0.0_${gw.port}.worker_1.downstream_cx_total`);
    const seenBefore = backend.seen.length;
    const hostStat = async (name: string): Promise<number> => {
      const clusters = await gw.adminGet('/clusters');
      const m = new RegExp(`^outbound\\|${bport}\\|\\|app\\.default\\.svc\\.cluster\\.local::127\\.0\\.12\\.1:${bport}::${name}::(\\d+)$`, 'm').exec(clusters);
      assert.ok(m, `host ${name} in /clusters:\n${clusters}`);
      return Number(m[1]);
    };
    // Host stats are not reset by /reset_counters (Envoy's host counters live outside the stats store).
    const hostRqBefore = await hostStat('rq_total');
    // One connection per request: the kernel picks a worker per connection (hash of the 4-tuple).
    for (let i = 0; i < N; i++) assert.equal((await get(GW, gw.port, '/one', HOST)).status, 200);
    const w0 = (await gw.stat(`listener.0.0.0.0_${gw.port}.worker_0.downstream_cx_total`)) - before0;
    const w1 = (await gw.stat(`listener.0.0.0.0_${gw.port}.worker_1.downstream_cx_total`)) - before1;
    assert.equal(w0 + w1, N, `worker_0 ${w0} + worker_1 ${w1}`);
    assert.ok(w0 > 0 && w1 > 0, `both workers accept connections (worker_0 ${w0}, worker_1 ${w1})`);
    assert.equal(backend.seen.length - seenBefore, N);
    // /reset_counters reached both workers, so the totals are exactly this test's requests.
    assert.equal(await gw.stat(`http.outbound_0.0.0.0_${gw.port};.downstream_rq_2xx`), N);
    const cluster = `outbound|${bport}||app.default.svc.cluster.local`;
    assert.equal(await gw.stat(`cluster.${cluster};.upstream_rq_total`), N);
    assert.equal(await gw.stat(`cluster.${cluster};.upstream_rq_200`), N);
    // Configuration stats are not multiplied by the number of workers.
    assert.equal(await gw.stat(`cluster.${cluster};.membership_total`), 1);
    assert.equal(await gw.stat('listener_manager.total_listeners_active'), 3);
    // /clusters adds up every worker's host stats; each worker holds its own upstream connection.
    assert.equal((await hostStat('rq_total')) - hostRqBefore, N);
    assert.ok((await hostStat('cx_total')) >= 2);
  });

  test('one access log for both workers: a whole line per request, none lost or interleaved', async () => {
    const path = (i: number): string => `/one/access-${i}`;
    for (let i = 0; i < N; i++) assert.equal((await get(GW, gw.port, path(i), HOST)).status, 200);
    // Workers hand their lines to the main thread, which writes the file (flushed every second).
    const lines = await eventually(
      'every request in the access log',
      () => {
        const ls = gw
          .accessLog()
          .split('\n')
          .filter((l) => l.includes('/one/access-'));
        return Promise.resolve(ls.length >= N ? ls : undefined);
      },
      10_000,
      100,
    );
    assert.equal(lines.length, N);
    for (let i = 0; i < N; i++)
      assert.equal(lines.filter((l) => new RegExp(`^\\[[^\\]]+\\] "GET ${path(i)} HTTP/1\\.1" 200 - via_upstream - "-" 0 \\d+ `).test(l)).length, 1, path(i));
  });

  test('the Prometheus endpoint (15090) shows the same process-wide totals', async () => {
    const prom = (await rawRequest('127.0.0.1', gw.metrics, 'GET /stats/prometheus HTTP/1.1\r\nHost: x\r\n\r\n')).body.toString();
    const cluster = `outbound|${bport}||app.default.svc.cluster.local`;
    const upstream = await gw.stat(`cluster.${cluster};.upstream_rq_total`);
    const line = `envoy_cluster_upstream_rq_total{cluster_name="${cluster}"} ${upstream}`;
    assert.ok(
      prom.split('\n').includes(line),
      `${line} in:\n${prom
        .split('\n')
        .filter((l) => l.includes('upstream_rq_total'))
        .join('\n')}`,
    );
    assert.ok(upstream >= N);
  });

  test('a pushed route is served by every worker once admin shows it', async () => {
    gw.write('30-vs.yaml', vs('/two'));
    await eventually(
      'admin to show the new route',
      async () => ((await gw.adminGet('/config_dump?resource=dynamic_route_configs')).includes('"/two"') ? true : undefined),
      15_000,
      50,
    );
    const statuses: number[] = [];
    for (let i = 0; i < N; i++) statuses.push((await get(GW, gw.port, '/two', HOST)).status);
    assert.deepEqual(statuses, new Array<number>(N).fill(200));
    assert.equal((await get(GW, gw.port, '/one', HOST)).status, 404);
  });
});
