// The jwt_authn filter in a running proxy fed istiod-shaped config over ADS: a token is verified asynchronously
// and the request then goes on (claims in the dynamic metadata an RBAC filter behind it reads), a bad token is
// Envoy's 401, and a bug met after the verification (outside the connection's error boundary) resets that one
// stream while the proxy keeps serving.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../test/ads-server.ts';
import { HTTPBIN, assignment, edsCluster, gatewayListener, istioRoute, routeConfig, startEchoBackend } from '../test/fixtures.ts';
import { freePort } from '../test/raw-client.ts';
import { rawRequest, type RawResponse } from '../../e2e/lib/http.ts';
import { ActiveStream } from './active-stream.ts';

const HOST = 'jwt.test';
const ISSUER = 'issuer.test';
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

describe('jwt_authn (RequestAuthentication) in the proxy', () => {
  const ads = new TestAdsServer();
  let proxy: Proxy;
  let port: number;
  let key: CryptoKey;
  let backend: Awaited<ReturnType<typeof startEchoBackend>>;
  const decodeRouterFilter = Object.getOwnPropertyDescriptor(ActiveStream.prototype, 'decodeRouterFilter')?.value as (
    this: ActiveStream,
    ...a: unknown[]
  ) => void;
  const get = (path: string, token?: string): Promise<RawResponse> =>
    rawRequest('127.0.0.1', port, `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${token ? `Authorization: Bearer ${token}\r\n` : ''}\r\n`);
  const sign = (sub: string): Promise<string> =>
    new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer(ISSUER).setSubject(sub).setExpirationTime('1h').sign(key);

  before(async () => {
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k' }] });
    const jwt = {
      name: 'envoy.filters.http.jwt_authn',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
        providers: { 'origins-0': { issuer: ISSUER, local_jwks: { inline_string: jwks }, payload_in_metadata: 'payload', clear_route_cache: true } },
        rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] } } }],
        bypass_cors_preflight: true,
      },
    };
    // istiod's requestPrincipals ALLOW for `issuer.test/alice`.
    const meta = (k: string, v: string): Record<string, unknown> => ({
      metadata: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'payload' }, { key: k }], value: { string_match: { exact: v } } },
    });
    const rbac = {
      name: 'envoy.filters.http.rbac',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
        rules: {
          policies: {
            'ns[istio-system]-policy[alice]-rule[0]': {
              permissions: [{ and_rules: { rules: [{ any: true }] } }],
              principals: [{ and_ids: { ids: [{ and_ids: { ids: [meta('iss', ISSUER), meta('sub', 'alice')] } }] } }],
            },
          },
        },
        shadow_rules_stat_prefix: 'istio_dry_run_allow_',
      },
    };
    backend = await startEchoBackend('127.0.0.3', 'backend');
    await ads.start();
    port = await freePort();
    ads.set(CLUSTER_TYPE, [edsCluster(HTTPBIN)]);
    ads.set(ENDPOINT_TYPE, [assignment(HTTPBIN, [{ ip: '127.0.0.3', port: backend.port }])]);
    ads.set(LISTENER_TYPE, [gatewayListener(port, { extraHcm: { http_filters: [jwt, rbac, ROUTER] } })]);
    ads.set(ROUTE_TYPE, [routeConfig(`http.${port}`, [{ name: `${HOST}:80`, domains: [HOST], routes: [istioRoute('/', HTTPBIN)] }])]);
    proxy = await startTestProxy(ads);
    (ActiveStream.prototype as unknown as Record<string, unknown>).decodeRouterFilter = function (this: ActiveStream, ...a: unknown[]): void {
      if ((this as unknown as { path: string }).path === '/boom') throw new Error('injected bug');
      decodeRouterFilter.apply(this, a);
    };
  });

  after(async () => {
    (ActiveStream.prototype as unknown as Record<string, unknown>).decodeRouterFilter = decodeRouterFilter;
    await proxy?.close();
    await ads.stop();
    backend.server.close();
  });

  test('the verified subject is what the RBAC filter behind it sees', async () => {
    assert.equal((await get('/ok', await sign('alice'))).status, 200);
    const bob = await get('/ok', await sign('bob'));
    assert.equal(bob.status, 403);
    assert.equal(bob.body.toString(), 'RBAC: access denied');
    assert.equal((await get('/ok')).status, 403, 'no token: no principal');
  });

  test("a bad token is Envoy's 401 with www-authenticate, and never reaches the backend", async () => {
    const before = backend.seen.length;
    const r = await get('/ok', 'a.b');
    assert.equal(r.status, 401);
    assert.equal(r.body.toString(), 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections');
    assert.equal(r.header('www-authenticate'), `Bearer realm="http://${HOST}/ok", error="invalid_token"`);
    assert.equal(backend.seen.length, before);
  });

  test('a bug after the verification resets that stream only; the proxy keeps serving', async () => {
    const token = await sign('alice');
    await assert.rejects(get('/boom', token), /incomplete response head|no complete response|ECONNRESET|socket hang up/);
    assert.equal((await get('/ok', token)).status, 200);
  });
});
