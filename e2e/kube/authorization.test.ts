// AuthorizationPolicy against a real kube-apiserver: the CRD from charts/base, the controller watching
// security.istio.io with exactly the chart's RBAC, and the installed istio-ingressgateway enforcing it. Istio's
// ingress IP allow list (clients on their own loopback addresses in the test's network namespace), a DENY
// added and removed, the CRD refusing a malformed policy, and an ALLOW policy the controller cannot honour
// reported as an Event without opening the gateway; a RequestAuthentication whose token an AuthorizationPolicy requires.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../../controller/model/objects.ts';
import { KubeApiError } from '../../controller/sources/kube/client.ts';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { rawRequest, type RawResponse } from '../lib/http.ts';
import { eventually } from '../lib/process.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { HOST, gateway, setupSuite, startIngressPod, virtualService, type Suite } from './suite.ts';

const PORT = 8080;
const ALLOWED = '127.0.50.7';
const OTHER = '127.0.51.7';

describe('kubernetes: AuthorizationPolicy on the ingress gateway', () => {
  let s: Suite;
  let gw: GatewayPod;
  const get = (path: string, from: string, headers = ''): Promise<RawResponse> =>
    rawRequest('127.0.0.1', PORT, `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${headers}\r\n`, { localAddress: from });
  const policy = (name: string, spec: Record<string, unknown>): KubeObject => ({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: s.ns.gw },
    spec: { selector: { matchLabels: { istio: 'ingressgateway' } }, ...spec },
  });
  const until = (what: string, path: string, from: string, status: number): Promise<RawResponse> =>
    eventually(
      what,
      async () => {
        const r = await get(path, from);
        return r.status === status ? r : undefined;
      },
      30_000,
      200,
    );

  before(
    async () => {
      s = await setupSuite();
      const pod = await s.backend('httpbin-v1', s.ns.app, { app: 'httpbin', version: 'v1' });
      await s.service('httpbin', s.ns.app, [pod], { app: 'httpbin' });
      await s.kube.apply(gateway('httpbin-gateway', s.ns.app, { istio: 'ingressgateway' }, [HOST]));
      await s.kube.apply(virtualService('httpbin', s.ns.app, { hosts: [HOST], gateways: ['httpbin-gateway'], prefixes: ['/'], host: 'httpbin' }));
      gw = await startIngressPod(s);
      await until('the route', '/status/200', OTHER, 200);
    },
    { timeout: 10 * 60_000 },
  );

  after(
    async () => {
      await gw?.stop();
      await s?.cleanup();
    },
    { timeout: 120_000 },
  );

  test('an ALLOW list by ipBlocks: the listed client is served, any other gets 403 RBAC: access denied', async () => {
    await s.kube.apply(policy('ingress-policy', { action: 'ALLOW', rules: [{ from: [{ source: { ipBlocks: ['127.0.50.0/24'] } }] }] }));
    const denied = await until('the ALLOW policy', '/status/200', OTHER, 403);
    assert.equal(denied.body.toString(), 'RBAC: access denied');
    assert.equal((await get('/status/200', ALLOWED)).status, 200);
  });

  test('a DENY on a path wins over the ALLOW list, and removing it restores access', async () => {
    await s.kube.apply(policy('deny-status', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/status/*'] } }] }] }));
    await until('the DENY policy', '/status/200', ALLOWED, 403);
    assert.equal((await get('/headers', ALLOWED)).status, 200);
    await s.kube.remove('AuthorizationPolicy', s.ns.gw, 'deny-status');
    await until('the DENY policy gone', '/status/200', ALLOWED, 200);
  });

  test('the CRD refuses a malformed policy (unknown action) at admission', async () => {
    const err = await s.kube.create(policy('malformed', { action: 'PERMIT' })).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof KubeApiError, 'the API server rejected it');
    assert.equal(err.status, 422);
    assert.match(err.message, /spec\.action/);
  });

  test("a policy the schema accepts but Istio's validation refuses: a Warning Event, and the gateway stays closed", async () => {
    // The valid ALLOW list goes: the refused policy is now the only ALLOW, and refusing it must not open the gateway.
    await s.kube.remove('AuthorizationPolicy', s.ns.gw, 'ingress-policy');
    await s.kube.apply(policy('bad-ip', { action: 'ALLOW', rules: [{ from: [{ source: { ipBlocks: ['127.0.51.0/33'] } }] }] }));
    const events = await eventually(
      'an InvalidConfig Event on AuthorizationPolicy bad-ip',
      async () => {
        const evs = (await s.kube.eventsFor('AuthorizationPolicy', s.ns.gw, 'bad-ip')) as (KubeObject & { type: string; reason: string; message: string })[];
        return evs.length > 0 ? evs : undefined;
      },
      30_000,
      250,
    );
    assert.equal(events[0]?.type, 'Warning');
    assert.match(events[0]?.message ?? '', /127\.0\.51\.0\/33/);
    assert.match(events[0]?.message ?? '', /allows nothing, so the gateway does not fail open/);
    await until('the refused ALLOW policy, closed', '/status/200', ALLOWED, 403);
    assert.equal((await get('/status/200', OTHER)).status, 403);
  });

  test('RequestAuthentication (inline JWKS) with an AuthorizationPolicy on requestPrincipals: a valid token is required', async () => {
    await s.kube.remove('AuthorizationPolicy', s.ns.gw, 'bad-ip');
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const issuer = 'kube@meshgate.example';
    await s.kube.apply({
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'jwt', namespace: s.ns.gw },
      spec: { selector: { matchLabels: { istio: 'ingressgateway' } }, jwtRules: [{ issuer, jwks: JSON.stringify({ keys: [{ ...jwk, kid: 'k' }] }) }] },
    });
    await s.kube.apply(policy('require-jwt', { action: 'ALLOW', rules: [{ from: [{ source: { requestPrincipals: [`${issuer}/*`] } }] }] }));
    const sign = (iss: string): Promise<string> =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer(iss).setSubject('user-1').setExpirationTime('1h').sign(privateKey);
    const good = `Authorization: Bearer ${await sign(issuer)}\r\n`;
    await eventually('the token accepted', async () => ((await get('/status/200', OTHER, good)).status === 200 ? true : undefined), 30_000, 200);
    const none = await get('/status/200', OTHER);
    assert.equal(none.status, 403);
    assert.equal(none.body.toString(), 'RBAC: access denied');
    const wrong = await get('/status/200', OTHER, `Authorization: Bearer ${await sign('someone-else')}\r\n`);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.toString(), 'Jwt issuer is not configured');
  });
});
