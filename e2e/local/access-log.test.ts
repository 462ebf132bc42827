// Istio's access log, configured as Istio configures it: a real `meshgate local` gateway started with
// --mesh-config holding accessLogFile and accessLogEncoding: JSON. The controller sends the
// envoy.access_loggers.file logger istiod sends (HCM, tcp_proxy, listener), the proxy writes one JSON line per
// request or connection, keys sorted, typed values (numbers, null for missing): 200 through the upstream, 404 NR,
// 503 UH and UF, 403 from an AuthorizationPolicy, a TCP connection, a TLS connection whose SNI no chain matches
// (the listener's logger, NR). The --access-log file keeps Istio's TEXT lines
// beside it; a mesh config changed to TEXT with a custom format takes effect without a restart. Two worker threads
// serve (--concurrency 2): their lines reach the main thread, the one writer of each file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, freePort } from '../lib/process.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

const HOST = 'httpbin.example.com';
const BACKEND_IP = '127.0.41.1';
const DEAD_IP = '127.0.41.2';

const ISTIO_JSON_KEYS = [
  'authority',
  'bytes_received',
  'bytes_sent',
  'connection_termination_details',
  'downstream_local_address',
  'downstream_remote_address',
  'duration',
  'method',
  'path',
  'protocol',
  'request_id',
  'requested_server_name',
  'response_code',
  'response_code_details',
  'response_flags',
  'route_name',
  'start_time',
  'upstream_cluster',
  'upstream_host',
  'upstream_local_address',
  'upstream_service_time',
  'upstream_transport_failure_reason',
  'user_agent',
  'x_forwarded_for',
];

type Line = Record<string, unknown>;

describe('local mode: the access log from meshConfig.accessLogFile (JSON encoding)', () => {
  let gw: Gateway;
  let backend: Backend;
  let dir: string;
  let meshFile: string;
  let logFile: string;
  let tcpPort: number;
  let tlsPort: number;
  let deadPort: number;
  /** A request whose User-Agent names it (the edge gateway replaces a client's x-request-id, as Envoy does). */
  const request = (host: string, path: string, agent = 'e2e-access-log', headers: Record<string, string> = {}): Promise<RawResponse> =>
    rawRequest(
      '127.0.0.1',
      gw.port,
      [`GET ${path} HTTP/1.1`, `Host: ${host}`, `User-Agent: ${agent}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n'),
    );
  const lines = (): Line[] =>
    (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  /** The JSON line of the request with this User-Agent (lines are flushed within a second). */
  const lineFor = (agent: string): Promise<Line> =>
    eventually(`the access log line of ${agent}`, async () => Promise.resolve(lines().find((l) => l.user_agent === agent)), 10_000, 100);

  before(async () => {
    backend = await startBackend(BACKEND_IP, await freePort(), 'httpbin');
    deadPort = await freePort();
    tcpPort = await freePort();
    tlsPort = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'meshgate-alog-'));
    meshFile = join(dir, 'mesh');
    logFile = join(dir, 'access.json');
    writeFileSync(meshFile, `accessLogFile: ${logFile}\naccessLogEncoding: JSON\n`);
    gw = await startGateway({ accessLog: true, concurrency: 2, args: ['--mesh-config', meshFile] });
    // The gateway Service maps a TCP port too.
    gw.write(
      '00-gateway-service.yaml',
      `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system, labels: {app: istio-ingressgateway, istio: ingressgateway}}
spec:
  type: LoadBalancer
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: ${gw.port}, protocol: TCP}
  - {name: tcp, port: 9000, targetPort: ${tcpPort}, protocol: TCP}
  - {name: tls, port: 9443, targetPort: ${tlsPort}, protocol: TCP}
`,
    );
    gw.write('10-gateway.yaml', gatewayYaml('httpbin-gateway', [HOST, 'empty.example.com', 'dead.example.com']));
    gw.write(
      '11-tcp-gateway.yaml',
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tcp-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: ["*"]
  - port: {number: 9443, name: tls, protocol: TLS}
    hosts: [db.example.com]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example.com]
  gateways: [tcp-gateway]
  tls:
  - match: [{port: 9443, sniHosts: [db.example.com]}]
    route: [{destination: {host: httpbin, port: {number: ${backend.port}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp, namespace: default}
spec:
  hosts: ["*"]
  gateways: [tcp-gateway]
  tcp:
  - route: [{destination: {host: httpbin, port: {number: ${backend.port}}}}]
`,
    );
    gw.write('20-httpbin.yaml', serviceYaml('httpbin', backend.port, [{ ip: BACKEND_IP }]));
    gw.write('21-empty.yaml', serviceYaml('empty', backend.port, []).replace(/endpoints:\n$/, 'endpoints: []\n'));
    gw.write('22-dead.yaml', serviceYaml('dead', deadPort, [{ ip: DEAD_IP }]));
    gw.write('30-vs.yaml', virtualServiceYaml('httpbin', HOST, 'httpbin-gateway', 'httpbin'));
    gw.write('31-vs.yaml', virtualServiceYaml('empty', 'empty.example.com', 'httpbin-gateway', 'empty'));
    gw.write('32-vs.yaml', virtualServiceYaml('dead', 'dead.example.com', 'httpbin-gateway', 'dead'));
    gw.write(
      '40-deny.yaml',
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin"], ports: ["${gw.port}"]}}]}]
`,
    );
    await eventually('the routes and the policy', async () => ((await request(HOST, '/admin')).status === 403 ? true : undefined), 20_000, 200);
    await eventually('the dead backend route', async () => ((await request('dead.example.com', '/')).status === 503 ? true : undefined), 20_000, 200);
    await eventually('the TCP listener', async () => ((await gw.adminGet('/listeners')).includes(`0.0.0.0_${tcpPort}`) ? true : undefined), 20_000, 200);
    await eventually('the TLS listener', async () => ((await gw.adminGet('/listeners')).includes(`0.0.0.0_${tlsPort}`) ? true : undefined), 20_000, 200);
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("200 through the upstream: Istio's JSON keys, sorted, with their types", async () => {
    const r = await request(HOST, '/status/200?x=1', 'alog-200', { 'x-forwarded-for': '203.0.113.9' });
    assert.equal(r.status, 200);
    const raw = await eventually(
      'the raw line',
      async () =>
        Promise.resolve(
          readFileSync(logFile, 'utf8')
            .split('\n')
            .find((l) => l.includes('"alog-200"')),
        ),
      10_000,
      100,
    );
    const l = JSON.parse(raw) as Line;
    assert.deepEqual(Object.keys(l), ISTIO_JSON_KEYS, 'the keys of EnvoyJSONLogFormatIstio, sorted as Envoy prints them');
    assert.equal(l.method, 'GET');
    assert.equal(l.path, '/status/200?x=1');
    assert.equal(l.protocol, 'HTTP/1.1');
    assert.equal(l.response_code, 200);
    assert.equal(l.response_flags, '-');
    assert.equal(l.response_code_details, 'via_upstream');
    assert.equal(l.authority, HOST);
    assert.equal(l.user_agent, 'alog-200');
    assert.match(String(l.request_id), /^[0-9a-f-]{36}$/, 'the x-request-id the gateway generated');
    assert.match(String(l.x_forwarded_for), /^203\.0\.113\.9,/);
    assert.equal(l.upstream_host, `${BACKEND_IP}:${backend.port}`);
    assert.equal(l.upstream_cluster, `outbound|${backend.port}||httpbin.default.svc.cluster.local`);
    assert.equal(l.downstream_local_address, `127.0.0.1:${gw.port}`);
    assert.match(String(l.downstream_remote_address), /^127\.0\.0\.1:\d+$/);
    assert.equal(typeof l.bytes_sent, 'number');
    assert.equal(l.bytes_received, 0);
    assert.equal(typeof l.duration, 'number');
    assert.match(String(l.upstream_service_time), /^\d+$/, 'a response header: a string');
    assert.equal(l.connection_termination_details, null);
    assert.equal(l.requested_server_name, null);
    assert.equal(l.upstream_transport_failure_reason, null);
    assert.match(String(l.start_time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('404 NR for an unknown host; 503 UH with no endpoint; 503 UF with a refused connection; 403 from RBAC', async () => {
    assert.equal((await request('nowhere.example.com', '/', 'alog-404')).status, 404);
    assert.equal((await request('empty.example.com', '/', 'alog-uh')).status, 503);
    assert.equal((await request('dead.example.com', '/', 'alog-uf')).status, 503);
    assert.equal((await request(HOST, '/admin', 'alog-403')).status, 403);
    const nr = await lineFor('alog-404');
    assert.equal(nr.response_code, 404);
    assert.equal(nr.response_flags, 'NR');
    assert.equal(nr.response_code_details, 'route_not_found');
    assert.equal(nr.upstream_host, null);
    assert.equal(nr.upstream_cluster, null);
    const uh = await lineFor('alog-uh');
    assert.equal(uh.response_flags, 'UH');
    assert.equal(uh.response_code_details, 'no_healthy_upstream');
    assert.equal(uh.upstream_cluster, `outbound|${backend.port}||empty.default.svc.cluster.local`);
    const uf = await lineFor('alog-uf');
    assert.equal(uf.response_code, 503);
    assert.match(String(uf.response_flags), /^UF/);
    assert.equal(uf.upstream_host, `${DEAD_IP}:${deadPort}`);
    const denied = await lineFor('alog-403');
    assert.equal(denied.response_code, 403);
    assert.equal(denied.response_code_details, 'rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-admin]-rule[0]]');
    assert.equal(denied.upstream_host, null);
  });

  test('a TCP connection through the tcp_proxy: one line when it closes, no request fields', async () => {
    await new Promise<void>((resolve, reject) => {
      // Not half-closed: the backend answers an HTTP/1.0 request and closes, and the proxy passes the close on
      // (a client FIN first could let the backend drop the connection before it answers: no bytes back).
      const s = connect(tcpPort, '127.0.0.1', () => s.write('GET /tcp HTTP/1.0\r\nHost: x\r\n\r\n'));
      s.on('data', () => undefined);
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    const l = await eventually('the TCP line', async () => Promise.resolve(lines().find((x) => x.method === null && x.upstream_host !== null)), 10_000, 100);
    assert.equal(l.protocol, null);
    assert.equal(l.response_code, 0);
    assert.equal(l.response_flags, '-');
    assert.equal(l.upstream_cluster, `outbound|${backend.port}||httpbin.default.svc.cluster.local`);
    assert.equal(l.upstream_host, `${BACKEND_IP}:${backend.port}`);
    assert.equal(l.downstream_local_address, `127.0.0.1:${tcpPort}`);
    assert.ok((l.bytes_received as number) > 0 && (l.bytes_sent as number) > 0, 'bytes both ways');
  });

  test('a TLS connection whose SNI no filter chain matches: the listener logger (response flag NR) logs it', async () => {
    await new Promise<void>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'other.example.com', rejectUnauthorized: false });
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
    const l = await eventually(
      'the listener line',
      async () => Promise.resolve(lines().find((x) => x.requested_server_name === 'other.example.com')),
      10_000,
      100,
    );
    assert.equal(l.response_flags, 'NR');
    assert.equal(l.response_code, 0);
    assert.equal(l.method, null);
    assert.equal(l.upstream_cluster, null);
    assert.equal(l.downstream_local_address, `127.0.0.1:${tlsPort}`);
  });

  test("--access-log keeps Istio's TEXT lines for the same requests", async () => {
    await lineFor('alog-404');
    const text = await eventually(
      'the TEXT line',
      async () =>
        Promise.resolve(
          gw
            .accessLog()
            .split('\n')
            .find((l) => l.includes('"alog-404"')),
        ),
      10_000,
      100,
    );
    assert.match(
      text,
      /^\[\S+\] "GET \/ HTTP\/1\.1" 404 NR route_not_found - "-" 0 0 \d+ - "[^"]+" "alog-404" "[0-9a-f-]{36}" "nowhere\.example\.com" "-" - - 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ - -$/,
    );
  });

  test('a mesh config changed to a custom TEXT format applies without a restart', async () => {
    writeFileSync(meshFile, `accessLogFile: ${logFile}\naccessLogFormat: 'custom %REQ(USER-AGENT)% %RESPONSE_CODE% %REQ_WITHOUT_QUERY(:PATH)%'\n`);
    const line = await eventually(
      'the custom line',
      async () => {
        await request(HOST, '/status/200?secret=1', 'alog-custom');
        return readFileSync(logFile, 'utf8')
          .split('\n')
          .find((l) => l.startsWith('custom alog-custom'));
      },
      20_000,
      300,
    );
    assert.equal(line, 'custom alog-custom 200 /status/200');
  });
});
