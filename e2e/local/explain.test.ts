// `meshgate explain` against a real `meshgate local` running the httpbin walkthrough (issue 2's config: the quick
// start, then a subset no pod has), plus a VirtualService with named routes: for each request, explain through the
// gateway's admin API names the route and cluster the real request reaches, read from the gateway's JSON access log
// (route_name, upstream_cluster, response_code), the walkthrough's 404s and 503 included; explain --config on the
// same directory gives the same answer offline.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MESHGATE, REPO, eventually, freePort, meshgate, type Proc } from '../lib/process.ts';
import { rawRequest } from '../lib/http.ts';
import { startGateway, type Gateway } from '../lib/gateway.ts';

const HOST = 'httpbin.example.com';
const NAMED = 'named.example.com';
const HTTPBIN = 'outbound|8000||httpbin.default.svc.cluster.local';
const SUBSET = 'outbound|8000|test-version|httpbin.default.svc.cluster.local';

interface LogLine {
  user_agent: string | null;
  response_code: number;
  response_code_details: string | null;
  route_name: string | null;
  upstream_cluster: string | null;
}

interface Explained {
  outcome: string;
  status?: number;
  served: boolean;
  why?: string;
  listener?: { name: string; gatewayPort?: number };
  route?: { index: number; name: string; source?: { kind: string; namespace: string; name: string } };
  skippedRoutes: { name: string; reason: string }[];
  clusters: { name: string; endpoints: { address: string; usable: boolean }[] }[];
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(MESHGATE, ['explain', ...args], { timeout: 60_000, env: { ...process.env, MESHGATE_LOG_PRETTY: '0' } }, (err, stdout, stderr) =>
      resolveRun({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('meshgate explain on the walkthrough: the same route and cluster as real requests', () => {
  let gw: Gateway;
  let pod: Proc;
  let podPort: number;
  let logFile: string;
  let meshFile: string;
  const cleanup: string[] = [];

  const lines = (): LogLine[] =>
    (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);

  before(async () => {
    podPort = await freePort();
    pod = meshgate(['httpbin', '--host', '127.0.0.1', '--port', String(podPort), '--name', 'httpbin-v1']);
    await pod.waitForOutput(/httpbin listening/);
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-explain-mesh-'));
    cleanup.push(dir);
    meshFile = join(dir, 'mesh');
    logFile = join(dir, 'access.json');
    writeFileSync(meshFile, `accessLogFile: ${logFile}\naccessLogEncoding: JSON\n`);
    gw = await startGateway({ args: ['--mesh-config', meshFile] });
    const example = (f: string): string => readFileSync(join(REPO, 'examples/quickstart', f), 'utf8');
    gw.write('10-httpbin-gateway.yaml', example('10-httpbin-gateway.yaml'));
    // The pod listens on a free port: the Service's targetPort and the EndpointSlice port follow it.
    gw.write(
      '20-httpbin.yaml',
      example('20-httpbin.yaml')
        .replace('targetPort: 8000', `targetPort: ${podPort}`)
        .replace('port: 8000\n    protocol: TCP', `port: ${podPort}\n    protocol: TCP`),
    );
    gw.write('30-httpbin-virtualservice.yaml', example('30-httpbin-virtualservice.yaml'));
    gw.write(
      '40-walkthrough-step3.yaml',
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin
  subsets: [{name: test-version, labels: {version: v3}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-anything, namespace: default}
spec:
  hosts: [${HOST}]
  gateways: [httpbin-gateway]
  http:
  - match: [{uri: {prefix: /anything}}]
    route: [{destination: {host: httpbin, port: {number: 8000}, subset: test-version}}]
`,
    );
    gw.write(
      '50-named.yaml',
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: named-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [${NAMED}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: named, namespace: default}
spec:
  hosts: [${NAMED}]
  gateways: [named-gateway]
  http:
  - name: variant-b
    match: [{headers: {x-variant: {exact: b}}}]
    route: [{destination: {host: httpbin, port: {number: 8000}}}]
  - name: fallback
    route: [{destination: {host: httpbin, port: {number: 8000}, subset: test-version}, weight: 25}, {destination: {host: httpbin, port: {number: 8000}}, weight: 75}]
`,
    );
    await eventually(
      'the walkthrough config to be served',
      async () => {
        const r = await rawRequest('127.0.0.1', gw.port, `GET /status/200 HTTP/1.1\r\nHost: ${NAMED}\r\nx-variant: b\r\n\r\n`);
        return r.status === 200 ? true : undefined;
      },
      20_000,
      100,
    );
  });

  after(async () => {
    await gw?.stop();
    await pod?.stop();
    for (const d of cleanup) rmSync(d, { recursive: true, force: true });
  });

  /** Sends the request, and returns its access log line. */
  async function send(host: string, path: string, headers: [string, string][], agent: string): Promise<LogLine> {
    const head = [`GET ${path} HTTP/1.1`, `Host: ${host}`, `User-Agent: ${agent}`, ...headers.map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
    await rawRequest('127.0.0.1', gw.port, head);
    return eventually(`the access log line of ${agent}`, async () => Promise.resolve(lines().find((l) => l.user_agent === agent)), 10_000, 100);
  }

  async function explainBoth(
    host: string,
    path: string,
    headers: [string, string][],
  ): Promise<{ live: Explained; offline: Explained; liveCode: number; text: string; outputs: string }> {
    const req = ['--host', host, '--path', path, ...headers.flatMap(([k, v]) => ['--header', `${k}=${v}`])];
    const live = await run(['--admin', `http://127.0.0.1:${gw.admin}`, ...req, '-o', 'json']);
    const offline = await run(['--config', gw.dir, '--mesh-config', meshFile, ...req, '-o', 'json']);
    const text = await run(['--admin', `http://127.0.0.1:${gw.admin}`, ...req]);
    // Everything explain printed, for the failure messages.
    const outputs = [live, offline, text].map((r) => `exit ${r.code}\n${r.stdout}${r.stderr}`).join('\n---\n');
    assert.equal(text.code, live.code, outputs);
    assert.equal(offline.code, live.code, outputs);
    return { live: JSON.parse(live.stdout) as Explained, offline: JSON.parse(offline.stdout) as Explained, liveCode: live.code, text: text.stdout, outputs };
  }

  const cases: {
    name: string;
    host: string;
    path: string;
    headers?: [string, string][];
    code: number;
    route?: string;
    cluster?: string;
    why?: RegExp;
    offlineWhy?: RegExp;
  }[] = [
    { name: 'step 2: /status/200 reaches httpbin', host: HOST, path: '/status/200', code: 200, cluster: HTTPBIN },
    { name: 'step 2: /delay/1 skips the /status route', host: HOST, path: '/delay/1', code: 200, cluster: HTTPBIN },
    {
      name: 'step 2: /nothing is 404, no route',
      host: HOST,
      path: '/nothing',
      code: 404,
      why: /^no route of virtual host httpbin\.example\.com:80 matches GET \/nothing: its routes match path prefix \/status; path prefix \/delay; path prefix \/anything \(from VirtualService default\/httpbin, VirtualService default\/httpbin-anything\)$/,
    },
    {
      name: 'step 2: an unknown host is 404',
      host: 'unknown.example.com',
      path: '/status/200',
      code: 404,
      why: /^no virtual host of route configuration http\.\d+ takes host unknown\.example\.com \(its domains: /,
      offlineWhy:
        /^no Gateway server on port 80 takes host unknown\.example\.com: Gateway default\/httpbin-gateway takes httpbin\.example\.com; Gateway default\/named-gateway takes named\.example\.com$/,
    },
    {
      name: 'step 3: the subset without pods is 503 no healthy upstream',
      host: HOST,
      path: '/anything',
      code: 503,
      cluster: SUBSET,
      why: new RegExp(`^cluster ${SUBSET.replaceAll('|', '\\|')} has no endpoints$`),
      offlineWhy: /^subset test-version selects no ready pod: it needs version=v3, pods with app=httpbin have version v1$/,
    },
    { name: 'a named route on a header', host: NAMED, path: '/status/201', headers: [['x-variant', 'b']], code: 201, route: 'variant-b', cluster: HTTPBIN },
  ];

  for (const c of cases) {
    test(`${c.name}: explain (live and offline) names the route and cluster of the access log`, async () => {
      const agent = `e2e-explain-${c.path}-${c.host}`;
      const log = await send(c.host, c.path, c.headers ?? [], agent);
      assert.equal(log.response_code, c.code, JSON.stringify(log));
      const { live, offline, liveCode, text, outputs } = await explainBoth(c.host, c.path, c.headers ?? []);
      const ctx = `access log: ${JSON.stringify(log)}\n${outputs}`;
      // The access log's route and cluster, as explain names them.
      assert.equal(live.route?.name ?? null, log.route_name ?? (live.route ? '' : null), ctx);
      assert.equal(c.route ?? null, log.route_name, ctx);
      assert.equal(live.clusters[0]?.name ?? null, log.upstream_cluster, ctx);
      assert.equal(c.cluster ?? null, log.upstream_cluster, ctx);
      if (c.code >= 400) {
        assert.equal(live.status, c.code, ctx);
        assert.equal(liveCode, 1, ctx);
        assert.equal(live.served, false, ctx);
        assert.match(live.why ?? '', c.why ?? /./, ctx);
        assert.match(offline.why ?? '', c.offlineWhy ?? c.why ?? /./, ctx);
        assert.match(text, new RegExp(`^result {10}${c.code} (route_not_found|no_healthy_upstream): `, 'm'), ctx);
      } else {
        assert.equal(live.outcome, 'forwarded', ctx);
        assert.equal(liveCode, 0, ctx);
        assert.ok(
          live.clusters[0]?.endpoints.some((e) => e.usable && e.address === `127.0.0.1:${podPort}`),
          ctx,
        );
      }
      // The listener is found from the Gateway port (80), as a client outside would name it.
      assert.deepEqual(live.listener, { name: `0.0.0.0_${gw.port}`, address: '0.0.0.0', port: gw.port, gatewayPort: 80 }, ctx);
      // Offline: the same listener, route and clusters.
      assert.deepEqual(offline.listener, live.listener, ctx);
      assert.deepEqual(
        [offline.route?.index, offline.route?.name, offline.outcome, offline.status],
        [live.route?.index, live.route?.name, live.outcome, live.status],
        ctx,
      );
      assert.deepEqual(
        offline.clusters.map((x) => x.name),
        live.clusters.map((x) => x.name),
        ctx,
      );
    });
  }

  test('a request without the header: the named route is skipped with its reason, and each weighted cluster is named', async () => {
    const { live, offline } = await explainBoth(NAMED, '/status/200', []);
    assert.deepEqual(live.skippedRoutes, [
      {
        index: 0,
        name: 'variant-b',
        match: "any path, x-variant exact 'b'",
        reason: "header x-variant is absent, the route needs x-variant exact 'b'",
        source: { kind: 'VirtualService', namespace: 'default', name: 'named' },
      },
    ]);
    assert.equal(live.route?.name, 'fallback');
    assert.deepEqual(
      live.clusters.map((x) => x.name),
      [SUBSET, HTTPBIN],
    );
    // A quarter of the traffic goes to the empty subset: 503 for those.
    assert.equal(live.status, 503);
    assert.match(live.why ?? '', /^25% of requests: cluster .* has no endpoints$/);
    assert.match(offline.why ?? '', /^25% of requests: subset test-version selects no ready pod/);
    // The gateway agrees: requests land on both clusters.
    const seen = new Set<string | null>();
    for (let i = 0; i < 40 && seen.size < 2; i++) seen.add((await send(NAMED, '/status/200', [], `e2e-explain-weights-${i}`)).upstream_cluster);
    assert.deepEqual([...seen].sort(), [HTTPBIN, SUBSET].sort());
  });
});
