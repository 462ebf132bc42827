// RequestAuthentication at the ingress gateway in local mode, after Istio's "JWT at ingress" and "Authorization
// with JWT" tasks: a JWKS served over HTTPS (a test CA the controller is told to trust, as istiod's extra CA),
// fetched by the controller and inlined; tokens signed in the test with jose. Envoy's answers: a request without a
// token passes, a bad one is 401 with Envoy's message and `www-authenticate`; the verified payload and a claim
// reach the backend as headers and the token does not; an AuthorizationPolicy on requestPrincipals then needs
// a token; a VirtualService routes on a claim.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { eventually, freePort } from '../lib/process.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { CertFactory } from '../lib/certs.ts';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { gatewayYaml, serviceYaml, startGateway, type Gateway } from '../lib/gateway.ts';

const HOST = 'httpbin.example.com';
const BACKEND_IP = '127.0.34.1';
const ISSUER = 'testing@secure.istio.io';

describe('local mode: RequestAuthentication (JWT) at the ingress gateway', () => {
  const certs = new CertFactory();
  let jwks: Server;
  let gw: Gateway;
  let backend: Backend;
  let key: CryptoKey;
  let otherKey: CryptoKey;

  const token = (claims: Record<string, unknown>, o: { key?: CryptoKey; issuer?: string; exp?: number } = {}): Promise<string> =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(o.issuer ?? ISSUER)
      .setSubject(ISSUER)
      .setIssuedAt()
      .setExpirationTime(o.exp ?? Math.floor(Date.now() / 1000) + 3600)
      .sign(o.key ?? key);
  const get = (path: string, jwt?: string): Promise<RawResponse> =>
    rawRequest('127.0.0.1', gw.port, `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${jwt === undefined ? '' : `Authorization: Bearer ${jwt}\r\n`}\r\n`);

  before(async () => {
    const pair = await generateKeyPair('RS256');
    key = pair.privateKey;
    ({ privateKey: otherKey } = await generateKeyPair('RS256'));
    const { kty, n, e } = await exportJWK(pair.publicKey);
    const ca = certs.ca('jwks-ca');
    const serverCert = certs.leaf(ca, '127.0.0.1', { ip: ['127.0.0.1'] });
    jwks = createServer({ cert: serverCert.cert, key: serverCert.key }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [{ kty, n, e, kid: 'k1', alg: 'RS256', use: 'sig' }] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    const jwksUri = `https://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    backend = await startBackend(BACKEND_IP, await freePort(), 'httpbin');
    gw = await startGateway({ accessLog: true, env: { NODE_EXTRA_CA_CERTS: ca.certFile } });
    gw.write('10-gateway.yaml', gatewayYaml('httpbin-gateway', [HOST]));
    gw.write('20-httpbin.yaml', serviceYaml('httpbin', backend.port, [{ ip: BACKEND_IP }]));
    gw.write(
      '30-vs.yaml',
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [${HOST}]
  gateways: [httpbin-gateway]
  http:
  - match: [{uri: {exact: /headers}, headers: {"@request.auth.claims.group": {exact: admin}}}]
    rewrite: {uri: /admin-area}
    route: [{destination: {host: httpbin}}]
  - route: [{destination: {host: httpbin}}]
`,
    );
    gw.write(
      '40-jwt.yaml',
      `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt-example, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules:
  - issuer: "${ISSUER}"
    jwksUri: "${jwksUri}"
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [{header: x-jwt-group, claim: group}]
`,
    );
    const valid = await token({ group: 'users' });
    await eventually('the JWKS fetched and a token verified', async () => ((await get('/headers', valid)).status === 200 ? true : undefined), 30_000, 200);
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
    jwks?.close();
    certs.cleanup();
  });

  test('no token: served (RequestAuthentication alone never requires one)', async () => {
    const r = await get('/headers');
    assert.equal(r.status, 200);
  });

  test('a valid token: served; the payload and a claim reach the backend as headers, the token does not', async () => {
    const jwt = await token({ group: 'users' });
    const before = backend.seen.length;
    assert.equal((await get('/headers?t=valid', jwt)).status, 200);
    const seen = backend.seen.slice(before).find((s) => s.path === '/headers?t=valid');
    assert.ok(seen, 'the backend saw the request');
    assert.equal(seen.headers['x-jwt-group'], 'users');
    assert.equal(seen.headers['x-jwt-payload'], jwt.split('.')[1], 'the payload section as received');
    assert.equal(seen.headers['authorization'], undefined, 'forwardOriginalToken is false by default');
  });

  test("bad tokens: 401 with Envoy's message and www-authenticate", async () => {
    const cases: [string, string][] = [
      [await token({}, { key: otherKey }), 'Jwt verification fails'],
      [await token({}, { exp: Math.floor(Date.now() / 1000) - 3600 }), 'Jwt is expired'],
      ['not-a-jwt', 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections'],
      [await token({}, { issuer: 'someone-else' }), 'Jwt issuer is not configured'],
    ];
    for (const [jwt, message] of cases) {
      const r = await get('/headers', jwt);
      assert.equal(r.status, 401, message);
      assert.equal(r.body.toString(), message);
      assert.equal(r.header('www-authenticate'), `Bearer realm="http://${HOST}/headers", error="invalid_token"`);
    }
    const line = await eventually(
      'the access log line',
      () =>
        Promise.resolve(
          gw
            .accessLog()
            .split('\n')
            .find((l) => l.includes(' 401 ') && l.includes('jwt_authn_access_denied')),
        ),
      5000,
      100,
    );
    assert.match(line, /"GET \/headers HTTP\/1\.1" 401 - jwt_authn_access_denied\{/);
  });

  test('a VirtualService routes on a verified claim (@request.auth.claims)', async () => {
    const before = backend.seen.length;
    assert.equal((await get('/headers', await token({ group: 'admin' }))).status, 200);
    assert.equal((await get('/headers', await token({ group: 'users' }))).status, 200);
    assert.deepEqual(
      backend.seen.slice(before).map((s) => s.path),
      ['/admin-area', '/headers'],
    );
  });

  test('with an AuthorizationPolicy on requestPrincipals a token is required', async () => {
    gw.write(
      '50-require-jwt.yaml',
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: ALLOW
  rules: [{from: [{source: {requestPrincipals: ["${ISSUER}/*"]}}]}]
`,
    );
    const denied = await eventually(
      'the policy',
      async () => {
        const r = await get('/headers');
        return r.status === 403 ? r : undefined;
      },
      20_000,
      200,
    );
    assert.equal(denied.body.toString(), 'RBAC: access denied');
    assert.equal((await get('/headers', await token({ group: 'users' }))).status, 200);
  });
});
