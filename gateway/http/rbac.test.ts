// The HTTP RBAC filters in a running proxy, fed istiod-shaped config over ADS: a DENY filter before an ALLOW
// filter (as istiod orders them), a dry-run (shadow) DENY, clients on their own loopback addresses. What the
// client gets (Envoy's 403 `RBAC: access denied`), what never reaches the backend, the counters Envoy keeps, and
// the chain run in the listener's order (a fault filter before RBAC answers first).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Proxy } from '../proxy.ts';
import { startTestProxy } from '../test/test-proxy.ts';
import { TestAdsServer, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../test/ads-server.ts';
import { HTTPBIN, assignment, edsCluster, eventually, gatewayListener, istioRoute, routeConfig, startEchoBackend } from '../test/fixtures.ts';
import { freePort } from '../test/raw-client.ts';
import { rawRequest, type RawResponse } from '../../e2e/lib/http.ts';
import { adminClient } from '../../e2e/lib/gateway.ts';

const HOST = 'rbac.test';
const RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const ANY_PRINCIPAL = [{ and_ids: { ids: [{ any: true }] } }];
const path = (p: Record<string, unknown>): Record<string, unknown> => ({ and_rules: { rules: [{ or_rules: { rules: [{ url_path: { path: p } }] } }] } });

const FAULT = { name: 'envoy.filters.http.fault', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' } };
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
const DENY = {
  name: 'envoy.filters.http.rbac',
  typed_config: {
    '@type': RBAC_TYPE,
    rules: {
      action: 'DENY',
      policies: { 'ns[istio-system]-policy[deny-admin]-rule[0]': { permissions: [path({ prefix: '/admin' })], principals: ANY_PRINCIPAL } },
    },
    shadow_rules_stat_prefix: 'istio_dry_run_allow_',
  },
};
const DRY_RUN = {
  name: 'envoy.filters.http.rbac',
  typed_config: {
    '@type': RBAC_TYPE,
    shadow_rules: {
      action: 'DENY',
      policies: { 'ns[istio-system]-policy[dry]-rule[0]': { permissions: [path({ exact: '/dry' })], principals: ANY_PRINCIPAL } },
    },
    shadow_rules_stat_prefix: 'istio_dry_run_deny_',
  },
};
const ALLOW = {
  name: 'envoy.filters.http.rbac',
  typed_config: {
    '@type': RBAC_TYPE,
    rules: {
      policies: {
        'ns[istio-system]-policy[allow]-rule[0]': {
          permissions: [{ and_rules: { rules: [{ any: true }] } }],
          principals: [{ and_ids: { ids: [{ or_ids: { ids: [{ direct_remote_ip: { address_prefix: '127.0.40.0', prefix_len: 24 } }] } }] } }],
        },
      },
    },
    shadow_rules_stat_prefix: 'istio_dry_run_allow_',
  },
};

describe('HTTP RBAC filters (AuthorizationPolicy) in the proxy', () => {
  const ads = new TestAdsServer();
  let proxy: Proxy;
  let port: number;
  let backend: Awaited<ReturnType<typeof startEchoBackend>>;
  const get = (p: string, from: string): Promise<RawResponse> =>
    rawRequest('127.0.0.1', port, `GET ${p} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, { localAddress: from });
  const stat = (name: string): Promise<number> => adminClient(proxy.ports.admin).stat(name);

  before(async () => {
    await ads.start();
    backend = await startEchoBackend('127.0.0.3', 'backend');
    port = await freePort();
    ads.set(CLUSTER_TYPE, [edsCluster(HTTPBIN)]);
    ads.set(ENDPOINT_TYPE, [assignment(HTTPBIN, [{ ip: '127.0.0.3', port: backend.port }])]);
    ads.set(LISTENER_TYPE, [gatewayListener(port, { extraHcm: { http_filters: [DENY, DRY_RUN, ALLOW, FAULT, ROUTER] } })]);
    ads.set(ROUTE_TYPE, [routeConfig(`http.${port}`, [{ name: `${HOST}:80`, domains: [HOST], routes: [istioRoute('/', HTTPBIN)] }])]);
    proxy = await startTestProxy(ads);
  });

  after(async () => {
    await proxy?.close();
    await ads.stop();
    backend.server.close();
  });

  test('ALLOW by direct_remote_ip: inside the block served, outside 403 with Envoy body and no policy named', async () => {
    assert.equal((await get('/ok', '127.0.40.5')).status, 200);
    const denied = await get('/ok', '127.0.41.5');
    assert.equal(denied.status, 403);
    assert.equal(denied.body.toString(), 'RBAC: access denied');
    assert.equal(denied.header('content-type'), 'text/plain');
    assert.equal(backend.seen.filter((s) => s.url === '/ok').length, 1, 'the denied request never reached the backend');
  });

  test('DENY runs first and wins for an allowed client; counters as Envoy names them', async () => {
    const prefix = `http.outbound_0.0.0.0_${port};.rbac.`;
    const denied = await stat(`${prefix}denied`);
    const allowed = await stat(`${prefix}allowed`);
    assert.equal((await get('/admin/x', '127.0.40.5')).status, 403);
    assert.equal(await stat(`${prefix}denied`), denied + 1);
    assert.equal(await stat(`${prefix}allowed`), allowed, 'the denied request stopped at the DENY filter');
    // Both filters share the counters (same prefixes): the DENY filter allows /ok, then the ALLOW filter does.
    assert.equal((await get('/ok', '127.0.40.5')).status, 200);
    assert.equal(await stat(`${prefix}allowed`), allowed + 2);
  });

  test('a dry-run DENY counts shadow_denied and lets the request through', async () => {
    const name = `http.outbound_0.0.0.0_${port};.rbac.istio_dry_run_deny_shadow_denied`;
    const before = await stat(name);
    assert.equal((await get('/dry', '127.0.40.5')).status, 200);
    assert.equal(await stat(name), before + 1);
  });

  test("the filters run in the listener's order: a fault abort before RBAC answers first, after it RBAC does", async () => {
    const abort = {
      'envoy.filters.http.fault': {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
        abort: { http_status: 418, percentage: { numerator: 100, denominator: 'HUNDRED' } },
      },
    };
    const faulty = { ...istioRoute('/admin/faulty', HTTPBIN), typed_per_filter_config: abort };
    ads.set(ROUTE_TYPE, [routeConfig(`http.${port}`, [{ name: `${HOST}:80`, domains: [HOST], routes: [faulty, istioRoute('/', HTTPBIN)] }])]);
    await eventually('the faulty route', async () => ((await get('/admin/faulty', '127.0.40.5')).status === 403 ? true : undefined));
    ads.set(LISTENER_TYPE, [gatewayListener(port, { extraHcm: { http_filters: [FAULT, DENY, ROUTER] } })]);
    await eventually('fault first', async () => ((await get('/admin/faulty', '127.0.40.5')).status === 418 ? true : undefined));
    const r = await get('/admin/faulty', '127.0.40.5');
    assert.equal(r.body.toString(), 'fault filter abort');
    assert.equal((await get('/admin/x', '127.0.40.5')).status, 403, 'RBAC still runs after the fault filter');
    assert.equal((await get('/ok', '127.0.41.5')).status, 200, 'no ALLOW filter in this chain');
  });
});
