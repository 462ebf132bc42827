// AuthorizationPolicy on the ingress gateway in local mode, after Istio's "Authorization on ingress gateway" task:
// an IP allow list (clients on their own loopback addresses), a header rule, a DENY that wins over ALLOW, a dry-run
// DENY that only counts, a CUSTOM policy whose provider does not exist (closed, as istiod makes it), a rule that
// needs a JWT claim (closed: no token is ever verified here yet), and the policies removed again. Real requests
// on real sockets; the answers are Envoy's: 403 `RBAC: access denied` with the matched policy in the access log.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, freePort } from '../lib/process.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';
import { CertFactory, secretYaml, type Ca, type KeyPair } from '../lib/certs.ts';
import { httpsGet } from '../lib/tls-client.ts';

const HOST = 'httpbin.example.com';
const BACKEND_IP = '127.0.31.1';
const ALLOWED_CLIENT = '127.0.32.7';
const OTHER_CLIENT = '127.0.33.9';

const POLICIES = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-list, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: ALLOW
  rules:
  - from: [{source: {ipBlocks: ["127.0.32.0/24"]}}]
    to: [{operation: {paths: ["/ip/*", "/admin"]}}]
  - to: [{operation: {methods: ["GET"], paths: ["/token"]}}]
    when: [{key: "request.headers[x-token]", values: ["open-*"]}]
  - to: [{operation: {paths: ["/jwt"]}}]
    when: [{key: "request.auth.claims[group]", values: ["admin"]}]
  - to: [{operation: {paths: ["/dry", "/ext/a"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-dry, namespace: istio-system, annotations: {istio.io/dry-run: "true"}}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/dry"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: CUSTOM
  provider: {name: not-configured}
  rules: [{to: [{operation: {paths: ["/ext/*"]}}]}]
`;

describe('local mode: AuthorizationPolicy at the ingress gateway', () => {
  let gw: Gateway;
  let backend: Backend;
  const request = (path: string, from = OTHER_CLIENT, headers: Record<string, string> = {}): Promise<RawResponse> =>
    rawRequest('127.0.0.1', gw.port, [`GET ${path} HTTP/1.1`, `Host: ${HOST}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n'), {
      localAddress: from,
    });
  const stat = (name: string): Promise<number> => gw.stat(`http.outbound_0.0.0.0_${gw.port};.rbac.${name}`);
  /** The access log line of a request (the log is written as requests finish, so it is waited for). */
  const logLine = (pattern: RegExp): Promise<string> =>
    eventually(
      'the access log line',
      () =>
        Promise.resolve(
          gw
            .accessLog()
            .split('\n')
            .find((l) => pattern.test(l)),
        ),
      5000,
      100,
    );

  before(async () => {
    backend = await startBackend(BACKEND_IP, await freePort(), 'httpbin');
    gw = await startGateway({ accessLog: true });
    gw.write('10-gateway.yaml', gatewayYaml('httpbin-gateway', [HOST]));
    gw.write('20-httpbin.yaml', serviceYaml('httpbin', backend.port, [{ ip: BACKEND_IP }]));
    gw.write('30-vs.yaml', virtualServiceYaml('httpbin', HOST, 'httpbin-gateway', 'httpbin'));
    await eventually('the route', async () => ((await request('/ip/x')).status === 200 ? true : undefined), 20_000, 200);
    gw.write('40-policies.yaml', POLICIES);
    await eventually('the policies', async () => ((await request('/nothing')).status === 403 ? true : undefined), 20_000, 200);
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
  });

  test('ALLOW by source IP block: the allowed client gets through, any other client gets 403 RBAC: access denied', async () => {
    const ok = await request('/ip/x', ALLOWED_CLIENT);
    assert.equal(ok.status, 200);
    const denied = await request('/ip/x', OTHER_CLIENT);
    assert.equal(denied.status, 403);
    assert.equal(denied.body.toString(), 'RBAC: access denied');
    assert.equal(denied.header('content-type'), 'text/plain');
    await logLine(/"GET \/ip\/x HTTP\/1\.1" 403 - rbac_access_denied_matched_policy\[none\] /);
  });

  test('ALLOW by header value with a prefix match, method included', async () => {
    assert.equal((await request('/token', OTHER_CLIENT, { 'x-token': 'open-sesame' })).status, 200);
    assert.equal((await request('/token', OTHER_CLIENT, { 'x-token': 'closed' })).status, 403);
    assert.equal((await request('/token')).status, 403);
  });

  test('DENY wins over ALLOW, and the access log names the DENY policy', async () => {
    const before = await stat('denied');
    const r = await request('/admin', ALLOWED_CLIENT);
    assert.equal(r.status, 403);
    await logLine(/"GET \/admin HTTP\/1\.1" 403 - rbac_access_denied_matched_policy\[ns\[istio-system\]-policy\[deny-admin\]-rule\[0\]\] /);
    assert.equal(await stat('denied'), before + 1);
    assert.equal(backend.seen.filter((s) => s.path === '/admin').length, 0, 'a denied request never reaches the backend');
  });

  test('a dry-run DENY only counts (shadow_denied); the request is served', async () => {
    const before = await stat('istio_dry_run_deny_shadow_denied');
    assert.equal((await request('/dry')).status, 200);
    assert.equal(await stat('istio_dry_run_deny_shadow_denied'), before + 1);
  });

  test('CUSTOM with an extension provider the mesh does not define fails closed', async () => {
    assert.equal((await request('/ext/a')).status, 403);
    await logLine(
      /"GET \/ext\/a HTTP\/1\.1" 403 - rbac_access_denied_matched_policy\[istio-ext-authz-not-configured-ns\[istio-system\]-policy\[ext\]-rule\[0\]-deny-due-to-bad-CUSTOM-action\]/,
    );
  });

  test('a rule on a JWT claim never matches without a verified token: closed, not open', async () => {
    assert.equal((await request('/jwt', OTHER_CLIENT, { authorization: 'Bearer x.y.z' })).status, 403);
  });

  test('the policies removed: everything is allowed again', async () => {
    rmSync(join(gw.dir, '40-policies.yaml'));
    await eventually('no policies', async () => ((await request('/admin', OTHER_CLIENT)).status === 200 ? true : undefined), 20_000, 200);
    assert.equal((await request('/nothing')).status, 200);
  });
});

describe('local mode: AuthorizationPolicy principals on a MUTUAL TLS server', () => {
  const certs = new CertFactory();
  let ca: Ca;
  let server: KeyPair;
  let teamA: KeyPair;
  let teamB: KeyPair;
  let gw: Gateway;
  let backend: Backend;
  let https: number;
  const call = (client: KeyPair, path = '/status/200'): ReturnType<typeof httpsGet> =>
    httpsGet({ port: https, ca: ca.cert, servername: 'mtls.example.com', cert: client.cert, key: client.key }, path);

  before(async () => {
    ca = certs.ca('authz-ca');
    server = certs.leaf(ca, 'mtls.example.com', { dns: ['mtls.example.com'] });
    teamA = certs.leaf(ca, 'client-a', { uri: ['spiffe://cluster.local/ns/team-a/sa/client'], client: true });
    teamB = certs.leaf(ca, 'client-b', { uri: ['spiffe://cluster.local/ns/team-b/sa/client'], client: true });
    backend = await startBackend(BACKEND_IP, await freePort(), 'httpbin');
    https = await freePort();
    gw = await startGateway();
    // The gateway Service again, with the HTTPS port.
    gw.write(
      '00-gateway-service.yaml',
      `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: ${gw.port}}
  - {name: https, port: 443, targetPort: ${https}}
`,
    );
    gw.write(
      '20-credential.yaml',
      secretYaml('mtls-credential', 'istio-system', { 'tls.crt': server.cert, 'tls.key': server.key }, 'kubernetes.io/tls') +
        '---\n' +
        secretYaml('mtls-credential-cacert', 'istio-system', { 'ca.crt': ca.cert }),
    );
    gw.write('21-httpbin.yaml', serviceYaml('httpbin', backend.port, [{ ip: BACKEND_IP }]));
    gw.write(
      '30-gateway.yaml',
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mtls, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: MUTUAL, credentialName: mtls-credential}
    hosts: [mtls.example.com]
`,
    );
    gw.write('31-vs.yaml', virtualServiceYaml('httpbin', 'mtls.example.com', 'istio-system/mtls', 'httpbin'));
    gw.write(
      '40-policy.yaml',
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: team-a-only, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/team-a/sa/client"]}}]
  - from: [{source: {namespaces: ["team-b"]}}]
    to: [{operation: {paths: ["/headers"]}}]
`,
    );
    await eventually(
      'the MUTUAL server with its policy',
      async () => ((await call(teamB).catch(() => undefined))?.status === 403 ? true : undefined),
      20_000,
      200,
    );
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
    certs.cleanup();
  });

  test("principals: the client certificate's SPIFFE URI SAN is the identity", async () => {
    assert.equal((await call(teamA)).status, 200);
    const denied = await call(teamB);
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'RBAC: access denied');
  });

  test('namespaces: the namespace inside the SPIFFE identity, on one path only', async () => {
    assert.equal((await call(teamB, '/headers')).status, 200);
    assert.equal((await call(teamB, '/status/200')).status, 403);
  });
});
