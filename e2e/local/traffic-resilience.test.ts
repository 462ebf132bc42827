// Istio's resilience tasks against real processes (issue 6): retries against a backend that fails on
// purpose, circuit breaking under bounded concurrent load, outlier ejection of a failing pod and its
// return, and consistent-hash session affinity. Exact answers and Envoy's counters under their names.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, freePort } from '../lib/process.ts';
import { get, type RawResponse } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

const GW = '127.0.0.1';

function vs(name: string, host: string, http: string): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${host}]
  gateways: [res-gateway]
  http:
${http}`;
}

function dr(name: string, host: string, trafficPolicy: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: default}
spec:
  host: ${host}
  trafficPolicy:
${trafficPolicy}`;
}

describe('traffic management: retries, circuit breaking, outlier detection, consistent hashing', () => {
  let gw: Gateway;
  let port: number;
  let bport: number;
  const backends: Backend[] = [];
  const start = async (ip: string, name: string): Promise<Backend> => {
    const b = await startBackend(ip, bport, name);
    backends.push(b);
    return b;
  };
  const send = (path: string, host: string, extra: Record<string, string> = {}): Promise<RawResponse> => get(GW, port, path, host, extra);
  /**
   * The Service `name` with a pod on each address, a VirtualService sending <name>.res.example.com to it and its
   * DestinationRule: files <n>-<name>.yaml, <n+1>-<name>-vs.yaml and <n+2>-<name>-dr.yaml.
   */
  const deploy = (n: number, name: string, ips: string[], trafficPolicy: string): void => {
    gw.write(
      `${n}-${name}.yaml`,
      serviceYaml(
        name,
        bport,
        ips.map((ip) => ({ ip })),
      ),
    );
    gw.write(`${n + 1}-${name}-vs.yaml`, virtualServiceYaml(name, `${name}.res.example.com`, 'res-gateway', name));
    gw.write(`${n + 2}-${name}-dr.yaml`, dr(name, name, trafficPolicy));
  };
  // Stats use the cluster's alt_stat_name (Istio: the cluster name plus ';').
  const cluster = (svc: string): string => `cluster.outbound|${bport}||${svc}.default.svc.cluster.local;`;

  before(async () => {
    bport = await freePort();
    gw = await startGateway({ accessLog: true });
    port = gw.port;
    gw.write('10-gateway.yaml', gatewayYaml('res-gateway', ['*.res.example.com']));
  });

  after(async () => {
    await gw?.stop();
    for (const b of backends) await b.close();
  });

  test('retries: two 503s then 200 -> the client gets 200 after 3 attempts (x-envoy-attempt-count 1..3); counters follow', async () => {
    const flaky = await start('127.0.11.1', 'flaky');
    gw.write('20-flaky.yaml', serviceYaml('flaky', bport, [{ ip: '127.0.11.1' }]));
    gw.write(
      '21-flaky-vs.yaml',
      vs(
        'flaky',
        'retry.res.example.com',
        `  - retries: {attempts: 3, retryOn: 5xx, perTryTimeout: 2s}
    route:
    - destination: {host: flaky}
`,
      ),
    );
    await eventually('flaky routed', async () => ((await send('/warmup', 'retry.res.example.com')).status === 200 ? true : undefined), 15_000, 100);
    const retryBefore = await gw.stat(`${cluster('flaky')}.upstream_rq_retry`);
    const successBefore = await gw.stat(`${cluster('flaky')}.upstream_rq_retry_success`);
    let calls = 0;
    flaky.behave = (req) => (req.path === '/flaky' && ++calls <= 2 ? { status: 503 } : {});
    const seenBefore = flaky.seen.length;
    const r = await send('/flaky', 'retry.res.example.com');
    assert.equal(r.statusLine, 'HTTP/1.1 200 OK');
    const attempts = flaky.seen.slice(seenBefore).filter((s) => s.path === '/flaky');
    assert.deepEqual(
      attempts.map((s) => s.headers['x-envoy-attempt-count']),
      ['1', '2', '3'],
    );
    assert.deepEqual(
      attempts.map((s) => s.headers['x-envoy-expected-rq-timeout-ms']),
      ['2000', '2000', '2000'],
    );
    assert.equal((await gw.stat(`${cluster('flaky')}.upstream_rq_retry`)) - retryBefore, 2);
    assert.equal((await gw.stat(`${cluster('flaky')}.upstream_rq_retry_success`)) - successBefore, 1);

    // Always failing: after 1 + 3 attempts the last upstream 503 goes to the client as is.
    const exceededBefore = await gw.stat(`${cluster('flaky')}.upstream_rq_retry_limit_exceeded`);
    flaky.behave = (req) => (req.path === '/down' ? { status: 503, body: 'backend says no' } : {});
    const n0 = flaky.seen.length;
    const down = await send('/down', 'retry.res.example.com');
    assert.equal(down.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.equal(down.body.toString(), 'backend says no');
    assert.equal(down.header('x-backend'), 'flaky');
    assert.equal(flaky.seen.slice(n0).filter((s) => s.path === '/down').length, 4);
    assert.equal((await gw.stat(`${cluster('flaky')}.upstream_rq_retry_limit_exceeded`)) - exceededBefore, 1);
    flaky.behave = () => ({});
  });

  test('retries: a per-try timeout retries a slow first attempt; retriable status codes retry 418', async () => {
    const flaky = backends.find((b) => b.name === 'flaky') as Backend;
    gw.write(
      '21-flaky-vs.yaml',
      vs(
        'flaky',
        'retry.res.example.com',
        `  - match: [{uri: {prefix: /slow}}]
    retries: {attempts: 2, perTryTimeout: 0.3s, retryOn: "5xx,reset"}
    route:
    - destination: {host: flaky}
  - match: [{uri: {prefix: /teapot}}]
    retries: {attempts: 2, retryOn: "418"}
    route:
    - destination: {host: flaky}
`,
      ),
    );
    await eventually(
      'the new retry policy to apply',
      async () => ((await gw.adminGet('/config_dump')).includes('"per_try_timeout": "0.300s"') ? true : undefined),
      15_000,
      100,
    );
    const perTryBefore = await gw.stat(`${cluster('flaky')}.upstream_rq_per_try_timeout`);
    let slow = 0;
    flaky.behave = (req) => (req.path === '/slow' && ++slow === 1 ? { delayMs: 1000 } : {});
    const t0 = performance.now();
    const r = await send('/slow', 'retry.res.example.com');
    assert.equal(r.status, 200);
    assert.ok(performance.now() - t0 < 900, 'answered by the second attempt');
    assert.equal((await gw.stat(`${cluster('flaky')}.upstream_rq_per_try_timeout`)) - perTryBefore, 1);
    let teapots = 0;
    flaky.behave = (req) => (req.path === '/teapot' && ++teapots === 1 ? { status: 418 } : {});
    const n0 = flaky.seen.length;
    assert.equal((await send('/teapot', 'retry.res.example.com')).status, 200);
    assert.deepEqual(
      flaky.seen.slice(n0).map((s) => s.headers['x-envoy-attempt-count']),
      ['1', '2'],
    );
    flaky.behave = () => ({});
  });

  test('Istio default retry policy: an upstream 503 is not retried (Istio >= 1.24); a refused connection is', async () => {
    const plain = await start('127.0.11.2', 'plain');
    gw.write('30-plain.yaml', serviceYaml('plain', bport, [{ ip: '127.0.11.2' }]));
    gw.write('31-plain-vs.yaml', virtualServiceYaml('plain', 'default.res.example.com', 'res-gateway', 'plain'));
    await eventually('plain routed', async () => ((await send('/', 'default.res.example.com')).status === 200 ? true : undefined), 15_000, 100);
    plain.behave = () => ({ status: 503 });
    const n0 = plain.seen.length;
    const r = await send('/once', 'default.res.example.com');
    assert.equal(r.status, 503);
    assert.equal(plain.seen.length - n0, 1, 'no retry on 503');
    plain.behave = () => ({});
    // A second "pod" whose port refuses connections: connect-failure is retried on the other pod
    // (previous_hosts), so every request succeeds; the retried ones arrive with x-envoy-attempt-count 2.
    gw.write('30-plain.yaml', serviceYaml('plain', bport, [{ ip: '127.0.11.2' }, { ip: '127.0.11.9' }]));
    await eventually(
      'the refusing pod in the endpoints',
      async () => ((await gw.adminGet('/clusters')).includes(`127.0.11.9:${bport}::health_flags`) ? true : undefined),
      15_000,
      100,
    );
    const n1 = plain.seen.length;
    for (let i = 0; i < 20; i++) assert.equal((await send('/refused', 'default.res.example.com')).status, 200);
    const counts = plain.seen.slice(n1).map((s) => s.headers['x-envoy-attempt-count']);
    assert.equal(counts.length, 20);
    assert.ok(counts.includes('2'), `some requests were retried after a refused connection: ${counts.join(',')}`);
    // (A retry can pick the refusing pod again: previous_hosts only re-draws up to 5 times.)
    assert.ok(
      counts.every((c) => c === '1' || c === '2' || c === '3'),
      counts.join(','),
    );
  });

  test('circuit breaking: maxConnections 1, http1MaxPendingRequests 1 -> concurrent requests overflow with 503 UO x-envoy-overloaded', async () => {
    const slow = await start('127.0.11.3', 'cb');
    slow.behave = () => ({ delayMs: 300 });
    deploy(
      40,
      'cb',
      ['127.0.11.3'],
      `    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
`,
    );
    await eventually(
      'circuit breaker config applied',
      async () => {
        const c = await gw.adminGet('/clusters');
        return c.includes(`outbound|${bport}||cb.default.svc.cluster.local::default_priority::max_pending_requests::1`) ? true : undefined;
      },
      15_000,
      100,
    );
    const overflowBefore = await gw.stat(`${cluster('cb')}.upstream_rq_pending_overflow`);
    // Bounded load: 3 rounds of 8 concurrent requests.
    const results: RawResponse[] = [];
    for (let round = 0; round < 3; round++) results.push(...(await Promise.all(Array.from({ length: 8 }, () => send('/', 'cb.res.example.com')))));
    const ok = results.filter((r) => r.status === 200);
    const over = results.filter((r) => r.status === 503);
    assert.equal(ok.length + over.length, results.length);
    assert.ok(ok.length >= 3, `some requests got through (${ok.length})`);
    assert.ok(over.length >= 6, `some requests overflowed (${over.length})`);
    const o = over[0] as RawResponse;
    assert.equal(o.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.deepEqual(
      o.headers.map(([k]) => k),
      ['x-envoy-overloaded', 'content-length', 'content-type', 'date', 'server'],
    );
    assert.equal(o.header('x-envoy-overloaded'), 'true');
    assert.equal(o.header('content-length'), '81');
    assert.equal(o.body.toString(), 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
    assert.equal((await gw.stat(`${cluster('cb')}.upstream_rq_pending_overflow`)) - overflowBefore, over.length);
    // maxConnections is process-wide, but as in Envoy a worker whose pool has no connection at all may open
    // one (so pending requests cannot be stranded): at most one connection, so one request, per worker.
    const workers = await gw.stat('server.concurrency');
    assert.ok(slow.maxActive >= 1 && slow.maxActive <= workers, `at most one request per worker at the backend (${slow.maxActive}, ${workers} workers)`);
    await eventually(
      'the overflow in the access log',
      () => Promise.resolve(/" 503 UO upstream_reset_before_response_started\{overflow\} - "-" 0 81 /.test(gw.accessLog()) ? true : undefined),
      5_000,
      100,
    );
  });

  test('outlier detection: a pod failing 2x in a row is ejected (healthy pod takes all traffic), then returns after baseEjectionTime', async () => {
    const good = await start('127.0.11.4', 'od-good');
    const bad = await start('127.0.11.5', 'od-bad');
    bad.behave = () => ({ status: 500 });
    deploy(
      50,
      'od',
      ['127.0.11.4', '127.0.11.5'],
      `    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 2, interval: 0.2s, baseEjectionTime: 1s, maxEjectionPercent: 100}
`,
    );
    const ejected = `${cluster('od')}.outlier_detection.ejections_active`;
    await eventually(
      'the bad pod to be ejected',
      async () => {
        await send('/', 'od.res.example.com');
        return (await gw.stat(ejected)) === 1 ? true : undefined;
      },
      15_000,
      20,
    );
    const t0 = Date.now();
    assert.equal(await gw.stat(`${cluster('od')}.outlier_detection.ejections_enforced_consecutive_5xx`), 1);
    const clusters = await gw.adminGet('/clusters');
    assert.match(clusters, new RegExp(`::127\\.0\\.11\\.5:${bport}::health_flags::/failed_outlier_check$`, 'm'));
    assert.match(clusters, new RegExp(`::127\\.0\\.11\\.4:${bport}::health_flags::healthy$`, 'm'));
    const json = JSON.parse(await gw.adminGet('/clusters?format=json')) as {
      cluster_statuses: { name: string; host_statuses?: { address: { socket_address: { address: string } }; health_status: Record<string, unknown> }[] }[];
    };
    const od = json.cluster_statuses.find((c) => c.name === `outbound|${bport}||od.default.svc.cluster.local`);
    assert.deepEqual(od?.host_statuses?.find((h) => h.address.socket_address.address === '127.0.11.5')?.health_status, {
      failed_outlier_check: true,
      eds_health_status: 'HEALTHY',
    });
    const badBefore = bad.seen.length;
    for (let i = 0; i < 10; i++) assert.equal((await send('/', 'od.res.example.com')).header('x-backend'), 'od-good');
    assert.equal(bad.seen.length, badBefore, 'the ejected pod gets nothing');
    // It recovers; after baseEjectionTime (1s) and the next interval tick it is back in rotation.
    bad.behave = () => ({});
    await eventually('the pod to return', async () => ((await gw.stat(ejected)) === 0 ? true : undefined), 5_000, 50);
    assert.ok(Date.now() - t0 >= 900, `returned after ${Date.now() - t0} ms`);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await send('/', 'od.res.example.com')).header('x-backend') ?? '');
    assert.deepEqual([...seen].sort(), ['od-bad', 'od-good']);
    assert.ok(good.seen.length > 0);
  });

  test('outlier detection: with every pod ejected there is no panic mode (Istio sets healthy_panic_threshold 0): 503 no healthy upstream', async () => {
    const lone = await start('127.0.11.6', 'lone');
    lone.behave = () => ({ status: 502 });
    deploy(
      60,
      'lone',
      ['127.0.11.6'],
      `    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}
`,
    );
    const r = await eventually(
      'the lone pod to be ejected',
      async () => {
        const x = await send('/', 'lone.res.example.com');
        return x.status === 503 && x.body.toString() === 'no healthy upstream' ? x : undefined;
      },
      15_000,
      50,
    );
    assert.equal(r.header('content-length'), '19');
  });

  test('warmup: a pod added to a ROUND_ROBIN service after the window gets about minimumPercent of a full share at first', async () => {
    await start('127.0.11.10', 'warm-old');
    await start('127.0.11.11', 'warm-new');
    deploy(
      80,
      'warm',
      ['127.0.11.10'],
      `    loadBalancer:
      simple: ROUND_ROBIN
      warmup: {duration: 3s, minimumPercent: 10}
`,
    );
    await eventually('warm routed', async () => ((await send('/', 'warm.res.example.com')).header('x-backend') === 'warm-old' ? true : undefined), 15_000, 100);
    await eventually(
      'slow start configured',
      async () => ((await gw.adminGet('/config_dump')).includes('"slow_start_window": "3s"') ? true : undefined),
      15_000,
      100,
    );
    // The first pod leaves its own slow-start window (pods present from the start ramp up together).
    await new Promise((r) => setTimeout(r, 3200));
    gw.write('80-warm.yaml', serviceYaml('warm', bport, [{ ip: '127.0.11.10' }, { ip: '127.0.11.11' }]));
    await eventually(
      'the new pod in the endpoints',
      async () => ((await gw.adminGet('/clusters')).includes(`127.0.11.11:${bport}::health_flags`) ? true : undefined),
      15_000,
      100,
    );
    let fresh = 0;
    const N = 100;
    for (let i = 0; i < N; i++) if ((await send('/', 'warm.res.example.com')).header('x-backend') === 'warm-new') fresh++;
    // Weight max(0.1, age / 3s) against 1 during the first few hundred ms: well under the 50% of an even split.
    assert.ok(fresh >= 2 && fresh <= 25, `the warming pod got ${fresh} of ${N}`);
    // After the window it takes its full share.
    await new Promise((r) => setTimeout(r, 3000));
    let later = 0;
    for (let i = 0; i < N; i++) if ((await send('/', 'warm.res.example.com')).header('x-backend') === 'warm-new') later++;
    assert.ok(Math.abs(later - 50) <= 2, `after the window: ${later} of ${N}`);
  });

  test('consistent hashing by header: a user sticks to one pod; users spread over both', async () => {
    await start('127.0.11.7', 'hash-a');
    await start('127.0.11.8', 'hash-b');
    deploy(
      70,
      'hash',
      ['127.0.11.7', '127.0.11.8'],
      `    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
`,
    );
    await eventually(
      'ring hash cluster',
      async () => ((await gw.adminGet('/config_dump')).includes('"lb_policy": "RING_HASH"') ? true : undefined),
      15_000,
      100,
    );
    await eventually('hash routed', async () => ((await send('/', 'hash.res.example.com', { 'x-user': 'u0' })).status === 200 ? true : undefined), 15_000, 100);
    const owners = new Map<string, string>();
    for (let u = 0; u < 40; u++) {
      const first = (await send('/', 'hash.res.example.com', { 'x-user': `u${u}` })).header('x-backend') ?? '';
      for (let i = 0; i < 3; i++) assert.equal((await send('/', 'hash.res.example.com', { 'x-user': `u${u}` })).header('x-backend'), first, `user u${u} moved`);
      owners.set(`u${u}`, first);
    }
    const counts = [...owners.values()].reduce((m, b) => m.set(b, (m.get(b) ?? 0) + 1), new Map<string, number>());
    assert.equal(counts.size, 2, `both pods own users: ${JSON.stringify([...counts])}`);
  });

  test('consistent hashing by cookie with ttl: the gateway generates the cookie, and the client sticks with it', async () => {
    gw.write(
      '72-hash-dr.yaml',
      dr(
        'hash',
        'hash',
        `    loadBalancer:
      consistentHash: {httpCookie: {name: session, ttl: 60s, path: /}}
`,
      ),
    );
    const r = await eventually(
      'a generated session cookie',
      async () => {
        const x = await send('/', 'hash.res.example.com');
        return x.header('set-cookie') ? x : undefined;
      },
      15_000,
      100,
    );
    const cookie = r.header('set-cookie') ?? '';
    assert.match(cookie, /^session="[0-9a-f]{16}"; Max-Age=60; Path=\/; HttpOnly$/);
    const value = /"([0-9a-f]{16})"/.exec(cookie)?.[1] ?? '';
    const owner = (await send('/', 'hash.res.example.com', { Cookie: `session="${value}"` })).header('x-backend');
    for (let i = 0; i < 5; i++) {
      const x = await send('/', 'hash.res.example.com', { Cookie: `session="${value}"` });
      assert.equal(x.header('set-cookie'), undefined, 'no new cookie once the client has one');
      assert.equal(x.header('x-backend'), owner);
    }
  });
});
