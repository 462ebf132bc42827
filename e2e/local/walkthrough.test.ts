// The Istio "Envoy as API gateway" walkthrough (issue 2), verbatim, against real processes: `meshgate local`
// on a config directory that the test edits step by step, httpbin "pods" on their own loopback addresses,
// and a raw HTTP client asserting what curl would show byte for byte.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, cpSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, eventually, freePort, meshgate, type Proc } from '../lib/process.ts';
import { get, rawRequest } from '../lib/http.ts';
import { adminClient, meshgateLocal } from '../lib/gateway.ts';

const HOST = 'httpbin.example.com';
const GW = '127.0.0.1';
// The gateway Service's targetPort (8080 in the example) moved to a free port, so the suite runs beside a
// quick start.
let GW_PORT = 0;

describe('local mode: the httpbin ingress walkthrough', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-e2e-'));
  const procs: Proc[] = [];
  let gw: Proc;
  let adminGet: (path: string) => Promise<string>;
  let stat: (name: string) => Promise<number>;
  const write = (file: string, text: string): void => writeFileSync(join(dir, file), text);

  before(async () => {
    // Step 1: the gateway's own Service and the Gateway.
    GW_PORT = await freePort();
    write(
      '00-ingressgateway-service.yaml',
      readFileSync(join(REPO, 'examples/quickstart/00-ingressgateway-service.yaml'), 'utf8').replace('targetPort: 8080', `targetPort: ${GW_PORT}`),
    );
    cpSync(join(REPO, 'examples/quickstart/10-httpbin-gateway.yaml'), join(dir, '10-httpbin-gateway.yaml'));
    const local = await meshgateLocal(dir);
    gw = local.proc;
    ({ adminGet, stat } = adminClient(local.admin));
    procs.push(gw);
    await eventually(
      'the gateway to be ready on /healthz/ready',
      async () => {
        const r = await rawRequest('127.0.0.1', local.status, 'GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\n');
        return r.status === 200 ? true : undefined;
      },
      20_000,
    );
  });

  after(async () => {
    for (const p of procs) await p.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('step 1: /listeners shows 0.0.0.0_<targetPort> and a Host with no VirtualService gets 404', async () => {
    const listeners = await adminGet('/listeners');
    assert.match(listeners, new RegExp(`^0\\.0\\.0\\.0_${GW_PORT}::0\\.0\\.0\\.0:${GW_PORT}$`, 'm'));
    const r = await get(GW, GW_PORT, '/status/200', HOST);
    assert.equal(r.statusLine, 'HTTP/1.1 404 Not Found');
    assert.deepEqual(
      r.headers.map(([k]) => k),
      ['date', 'server', 'content-length'],
    );
    assert.equal(r.header('server'), 'istio-envoy');
    assert.equal(r.header('content-length'), '0');
    assert.equal(r.body.length, 0);
  });

  test('step 2: a VirtualService routes /status and /delay to httpbin; /anything and unknown hosts are 404', async () => {
    const pod = meshgate(['httpbin', '--host', '127.0.0.2', '--port', '8000', '--name', 'httpbin-v1']);
    procs.push(pod);
    await pod.waitForOutput(/httpbin listening/);
    write('20-httpbin.yaml', readFileSync(join(REPO, 'examples/quickstart/20-httpbin.yaml'), 'utf8').replaceAll('127.0.0.1', '127.0.0.2'));
    cpSync(join(REPO, 'examples/quickstart/30-httpbin-virtualservice.yaml'), join(dir, '30-httpbin-virtualservice.yaml'));
    const r = await eventually(
      '/delay/1 to be routed',
      async () => {
        const res = await get(GW, GW_PORT, '/delay/1', HOST);
        return res.status === 200 ? res : undefined;
      },
      15_000,
      200,
    );
    assert.equal(r.header('server'), 'istio-envoy');
    assert.equal(r.header('content-type'), 'application/json');
    assert.match(r.header('x-envoy-upstream-service-time') ?? '', /^\d+$/);
    assert.ok(Number(r.header('x-envoy-upstream-service-time')) >= 900, 'the delay happened upstream');
    const seen = JSON.parse(r.body.toString()) as { headers: Record<string, string>; url: string };
    assert.equal(seen.headers.Host, HOST);
    assert.equal(seen.headers['X-Envoy-Attempt-Count'], '1');
    assert.equal(seen.headers['X-Forwarded-Proto'], 'http');
    assert.match(seen.headers['X-Request-Id'] ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(seen.headers['X-Envoy-Decorator-Operation'], 'httpbin.default.svc.cluster.local:8000/delay*');
    assert.equal((await get(GW, GW_PORT, '/status/418', HOST)).statusLine, 'HTTP/1.1 418 Unknown');
    assert.equal((await get(GW, GW_PORT, '/anything', HOST)).status, 404);
    assert.equal((await get(GW, GW_PORT, '/status/200', 'unknown.example.com')).status, 404);
  });

  test('step 3: a subset without matching pods answers 503 no healthy upstream, and relabelling the pod fixes it without a restart', async () => {
    const clustersBefore = await stat('cluster_manager.active_clusters');
    write(
      '40-httpbin-destinationrule.yaml',
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
  namespace: default
spec:
  host: httpbin
  subsets:
    - name: test-version
      labels:
        version: v3
`,
    );
    write(
      '50-httpbin-anything.yaml',
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin-anything
  namespace: default
spec:
  hosts: [httpbin.example.com]
  gateways: [httpbin-gateway]
  http:
    - match:
        - uri:
            prefix: /anything
      route:
        - destination:
            host: httpbin
            port:
              number: 8000
            subset: test-version
`,
    );
    const r = await eventually(
      '/anything to reach the empty subset',
      async () => {
        const res = await get(GW, GW_PORT, '/anything', HOST);
        return res.status === 503 ? res : undefined;
      },
      15_000,
      100,
    );
    assert.equal(r.statusLine, 'HTTP/1.1 503 Service Unavailable');
    assert.deepEqual(
      r.headers.map(([k]) => k),
      ['content-length', 'content-type', 'date', 'server'],
    );
    assert.equal(r.header('content-length'), '19');
    assert.equal(r.header('content-type'), 'text/plain');
    assert.equal(r.body.toString(), 'no healthy upstream');
    assert.equal(r.header('x-envoy-upstream-service-time'), undefined);
    assert.ok((await stat('cluster_manager.active_clusters')) > clustersBefore, 'the subset cluster was added');
    assert.match(await adminGet('/clusters'), /^outbound\|8000\|test-version\|httpbin\.default\.svc\.cluster\.local::/m);

    // Relabel the pod in the file: served by that pod within a second, same process.
    write('20-httpbin.yaml', readFileSync(join(dir, '20-httpbin.yaml'), 'utf8').replace('version: v1', 'version: v3'));
    const changedAt = Date.now();
    const ok = await eventually(
      '/anything to be served by the relabelled pod',
      async () => {
        const res = await get(GW, GW_PORT, '/anything', HOST);
        return res.status === 200 ? res : undefined;
      },
      5_000,
      25,
    );
    assert.ok(Date.now() - changedAt < 1_500, `applied after ${Date.now() - changedAt} ms`);
    assert.equal(ok.header('x-httpbin-instance'), 'httpbin-v1');
    assert.equal(gw.child.exitCode, null, 'the gateway process was not restarted');
  });

  test('bad input: malformed YAML and an invalid VirtualService are reported with file and reason; everything else keeps serving', async () => {
    write('60-broken.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: [unclosed\n');
    write(
      '70-bad-regex.yaml',
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bad-regex
  namespace: default
spec:
  hosts: [other.example.com]
  gateways: [httpbin-gateway]
  http:
    - match:
        - uri:
            regex: "/(unclosed"
      route:
        - destination:
            host: httpbin
`,
    );
    await gw.waitForOutput(/60-broken\.yaml/, 10_000);
    await gw.waitForOutput(/bad-regex[\s\S]*?regex|regex[\s\S]*?bad-regex/, 10_000);
    assert.equal((await get(GW, GW_PORT, '/status/200', HOST)).status, 200);
    assert.equal((await get(GW, GW_PORT, '/anything', HOST)).status, 200);
  });
});
