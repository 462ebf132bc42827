// External authorization at the ingress gateway in local mode, after Istio's "External Authorization" task: Istio's
// sample authorizer (an HTTP check service and a gRPC one) named as extension providers in the mesh config
// (--mesh-config), and a CUSTOM AuthorizationPolicy sending /headers to it. Real requests on real sockets: the
// authorizer's verdict decides, its 403 and body reach the client, paths outside the policy never reach it, the
// provider is switched from HTTP to gRPC by editing the policy, and when the service is down the request gets the
// provider's statusOnError with Envoy's UAEX flag; a changed mesh config file is applied without a restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, freePort } from '../lib/process.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';
import { DENY_BODY, startExtAuthzSample, type ExtAuthzSample } from '../lib/ext-authz-sample.ts';

const HOST = 'httpbin.example.com';
const BACKEND_IP = '127.0.34.1';
const AUTHZ_IP = '127.0.34.2';
const AUTHZ = 'ext-authz.foo.svc.cluster.local';

const mesh = (a: ExtAuthzSample, httpExtra = ''): string => `extensionProviders:
- name: sample-ext-authz-grpc
  envoyExtAuthzGrpc:
    service: ${AUTHZ}
    port: ${a.grpcPort}
- name: sample-ext-authz-http
  envoyExtAuthzHttp:
    service: ${AUTHZ}
    port: "${a.httpPort}"
    includeRequestHeadersInCheck: ["x-ext-authz"]${httpExtra}
`;

/** The sample's Service in namespace foo: an http port and a grpc one (the cluster speaks HTTP/2 to it). */
const authzService = (a: ExtAuthzSample): string => `apiVersion: v1
kind: Service
metadata: {name: ext-authz, namespace: foo, labels: {app: ext-authz}}
spec:
  selector: {app: ext-authz}
  ports: [{name: http, port: ${a.httpPort}, targetPort: ${a.httpPort}}, {name: grpc, port: ${a.grpcPort}, targetPort: ${a.grpcPort}}]
---
apiVersion: v1
kind: Pod
metadata: {name: ext-authz-0, namespace: foo, labels: {app: ext-authz}}
status: {podIP: ${AUTHZ_IP}, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ext-authz-slice, namespace: foo, labels: {kubernetes.io/service-name: ext-authz}}
addressType: IPv4
ports: [{name: http, port: ${a.httpPort}, protocol: TCP}, {name: grpc, port: ${a.grpcPort}, protocol: TCP}]
endpoints:
- {addresses: ["${AUTHZ_IP}"], conditions: {ready: true}, targetRef: {kind: Pod, name: ext-authz-0, namespace: foo}}
`;

const policy = (provider: string): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-authz, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: CUSTOM
  provider: {name: ${provider}}
  rules: [{to: [{operation: {paths: ["/headers"]}}]}]
`;

describe("local mode: CUSTOM AuthorizationPolicy with Istio's sample external authorizer", () => {
  let gw: Gateway;
  let backend: Backend;
  let authz: ExtAuthzSample;
  let meshDir: string;
  let meshFile: string;
  const request = (path: string, headers: Record<string, string> = {}): Promise<RawResponse> =>
    rawRequest('127.0.0.1', gw.port, [`GET ${path} HTTP/1.1`, `Host: ${HOST}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n'));
  const stat = (name: string): Promise<number> => gw.stat(`http.outbound_0.0.0.0_${gw.port};.ext_authz.${name}`);

  before(async () => {
    backend = await startBackend(BACKEND_IP, await freePort(), 'httpbin');
    authz = await startExtAuthzSample(AUTHZ_IP);
    meshDir = mkdtempSync(join(tmpdir(), 'meshgate-mesh-'));
    meshFile = join(meshDir, 'mesh');
    writeFileSync(meshFile, mesh(authz));
    gw = await startGateway({ accessLog: true, args: ['--mesh-config', meshFile] });
    gw.write('10-gateway.yaml', gatewayYaml('httpbin-gateway', [HOST]));
    gw.write('20-httpbin.yaml', serviceYaml('httpbin', backend.port, [{ ip: BACKEND_IP }]));
    gw.write('21-ext-authz.yaml', authzService(authz));
    gw.write('30-vs.yaml', virtualServiceYaml('httpbin', HOST, 'httpbin-gateway', 'httpbin'));
    gw.write('40-policy.yaml', policy('sample-ext-authz-http'));
    await eventually('the CUSTOM policy', async () => ((await request('/headers', { 'x-ext-authz': 'deny' })).status === 403 ? true : undefined), 20_000, 200);
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
    await authz?.close();
    if (meshDir) rmSync(meshDir, { recursive: true, force: true });
  });

  test("HTTP provider: denied with the authorizer's 403 and body; allowed with x-ext-authz: allow", async () => {
    const seen = authz.httpSeen.length;
    const denied = await request('/headers', { 'x-ext-authz': 'deny' });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.toString(), DENY_BODY);
    assert.equal(denied.header('x-ext-authz-check-result'), 'denied', "the authorizer's headers reach the client on a denial");
    const ok = await request('/headers', { 'x-ext-authz': 'allow' });
    assert.equal(ok.status, 200);
    const asked = authz.httpSeen.slice(seen);
    assert.equal(asked.length, 2);
    assert.equal(asked[1]?.path, '/headers', 'the check carries the request path');
    assert.equal(asked[1]?.headers['x-ext-authz'], 'allow', 'includeRequestHeadersInCheck names the header sent');
    assert.equal(backend.seen.filter((s) => s.path === '/headers').length, 1, 'only the allowed request reached the backend');
    assert.ok((await stat('denied')) >= 1);
    assert.ok((await stat('ok')) >= 1);
  });

  test('a path outside the policy never asks the authorizer', async () => {
    const seen = authz.httpSeen.length;
    assert.equal((await request('/ip')).status, 200);
    assert.equal(authz.httpSeen.length, seen);
  });

  test('gRPC provider: the same verdicts over envoy.service.auth.v3.Authorization/Check, its headers added upstream', async () => {
    gw.write('40-policy.yaml', policy('sample-ext-authz-grpc'));
    const seen = authz.grpcSeen.length;
    await eventually(
      'the gRPC provider',
      async () => ((await request('/headers', { 'x-ext-authz': 'deny' })) && authz.grpcSeen.length > seen ? true : undefined),
      20_000,
      200,
    );
    const denied = await request('/headers', { 'x-ext-authz': 'deny' });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.toString(), DENY_BODY);
    const before = backend.seen.length;
    const ok = await request('/headers', { 'x-ext-authz': 'allow' });
    assert.equal(ok.status, 200);
    const upstream = backend.seen.slice(before).find((s) => s.path === '/headers');
    assert.equal(upstream?.headers['x-ext-authz-check-result'], 'allowed', 'OkHttpResponse headers are set on the upstream request');
    const last = authz.grpcSeen.at(-1) as { attributes?: { request?: { http?: { path?: string; method?: string; host?: string } } } };
    assert.equal(last.attributes?.request?.http?.path, '/headers');
    assert.equal(last.attributes?.request?.http?.method, 'GET');
    assert.equal(last.attributes?.request?.http?.host, HOST);
  });

  test('the authorizer down: statusOnError from the mesh config (re-read without a restart), flag UAEX in the access log', async () => {
    gw.write('40-policy.yaml', policy('sample-ext-authz-http'));
    writeFileSync(meshFile, mesh(authz, '\n    statusOnError: "503"'));
    await authz.stopHttp();
    await eventually('statusOnError 503', async () => ((await request('/headers', { 'x-ext-authz': 'allow' })).status === 503 ? true : undefined), 20_000, 200);
    await eventually(
      'the access log line',
      () =>
        Promise.resolve(
          gw
            .accessLog()
            .split('\n')
            .find((l) => /"GET \/headers HTTP\/1\.1" 503 UAEX ext_authz_error /.test(l)),
        ),
      5000,
      100,
    );
    assert.ok((await stat('error')) >= 1);
  });
});
