// The Kubernetes Gateway API on a real kube-apiserver (issue 19): the standard-channel CRDs of a pinned Gateway API
// release, taken at test time from its Go module (sigs.k8s.io/gateway-api at the version Istio's module requires,
// scripts/fetch-gateway-api-crds.sh; run.sh fetches it before entering the network namespace), a
// Gateway of the `istio` class bound to the chart's Service (manual deployment) and HTTPRoutes as Istio's
// "Ingress with the Gateway API" task writes them (the API server fills in the CRDs' defaults), served by the
// chart's gateway pod whose controller runs with the chart's RBAC only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { KubeObject } from '../../controller/model/objects.ts';
import { get } from '../lib/http.ts';
import { eventually } from '../lib/process.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { setupSuite, startIngressPod, type Suite } from './suite.ts';
import { exec } from './cluster.ts';

const KINDS = ['gatewayclasses', 'gateways', 'httproutes', 'grpcroutes', 'referencegrants'];
const GW = '127.0.0.1';
const HOST = 'httpbin.gwapi.example.com';

const REPO = join(import.meta.dirname, '..', '..');

describe('kubernetes: Gateway API Gateway and HTTPRoute with the standard CRDs', () => {
  let s: Suite;
  let gw: GatewayPod;
  let pids: number[];
  const apply = (path: string, obj: KubeObject): Promise<KubeObject> =>
    s.kube.client.json<KubeObject>('PATCH', path, {
      query: { fieldManager: 'meshgate-e2e', force: true },
      body: obj,
      contentType: 'application/apply-patch+yaml',
    });

  before(
    async () => {
      s = await setupSuite();
      // On a shared cluster (E2E_KUBECONFIG) Gateway API CRDs already installed are used as they are.
      const served = await s.kube.client.json<{ resources: { name: string }[] }>('GET', '/apis/gateway.networking.k8s.io/v1').catch(() => undefined);
      if (!(s.external && served?.resources.some((r) => r.name === 'httproutes'))) {
        const out = await exec('bash', [join(REPO, 'scripts/fetch-gateway-api-crds.sh')], {}, 15 * 60_000);
        // stdout and stderr together: the directory is the line that is an absolute path.
        const dir = /^\/\S+\/config\/crd\/standard$/m.exec(out)?.[0];
        assert.ok(dir, `scripts/fetch-gateway-api-crds.sh printed no directory: ${out}`);
        for (const k of KINDS) {
          const crd = parse(readFileSync(join(dir, `gateway.networking.k8s.io_${k}.yaml`), 'utf8')) as KubeObject;
          await apply(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, crd);
        }
      }
      await eventually(
        'gateway.networking.k8s.io/v1 to serve gateways and httproutes',
        async () => {
          const list = await s.kube.client.json<{ resources: { name: string }[] }>('GET', '/apis/gateway.networking.k8s.io/v1').catch(() => undefined);
          const names = new Set(list?.resources.map((r) => r.name));
          return names.has('gateways') && names.has('httproutes') ? true : undefined;
        },
        60_000,
        250,
      );
      const v1 = await s.backend('httpbin-v1', s.ns.app, { app: 'httpbin', version: 'v1' });
      const v2 = await s.backend('httpbin-v2', s.ns.app, { app: 'httpbin-v2', version: 'v2' });
      await s.service('httpbin', s.ns.app, [v1], { app: 'httpbin' });
      await s.service('httpbin-v2', s.ns.app, [v2], { app: 'httpbin-v2' });
      await eventually(
        'the Gateway to be accepted by the API server',
        () =>
          apply(`/apis/gateway.networking.k8s.io/v1/namespaces/${s.ns.gw}/gateways/gateway`, {
            apiVersion: 'gateway.networking.k8s.io/v1',
            kind: 'Gateway',
            metadata: { name: 'gateway', namespace: s.ns.gw },
            spec: {
              gatewayClassName: 'istio',
              addresses: [{ type: 'Hostname', value: `istio-ingressgateway.${s.ns.gw}.svc.cluster.local` }],
              listeners: [{ name: 'http', hostname: '*.gwapi.example.com', port: 80, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } }],
            },
          }).catch(() => undefined),
        30_000,
        250,
      );
      // The task's HTTPRoute: no path type (the CRD defaults PathPrefix), no weight, no backendRef kind.
      await apply(`/apis/gateway.networking.k8s.io/v1/namespaces/${s.ns.app}/httproutes/http`, {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'http', namespace: s.ns.app },
        spec: {
          parentRefs: [{ name: 'gateway', namespace: s.ns.gw }],
          hostnames: [HOST],
          rules: [
            { matches: [{ path: { value: '/get' } }], backendRefs: [{ name: 'httpbin', port: 8000 }] },
            {
              matches: [{ path: { type: 'PathPrefix', value: '/headers' } }],
              filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'my-added-header', value: 'added-value' }] } }],
              backendRefs: [{ name: 'httpbin-v2', port: 8000 }],
            },
          ],
        },
      });
      gw = await startIngressPod(s);
      pids = [gw.proxy.pid, gw.controller?.pid ?? -1];
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

  test('the HTTPRoute routes through the Gateway bound to the chart Service; what no rule matches is 404', async () => {
    const r = await eventually(
      'a 200 for /get',
      async () => {
        const res = await get(GW, s.listenPort, '/get', HOST);
        return res.status === 200 ? res : undefined;
      },
      30_000,
      200,
    );
    assert.equal(r.header('server'), 'istio-envoy');
    const headers = await get(GW, s.listenPort, '/headers', HOST);
    assert.equal(headers.status, 200);
    const seen = JSON.parse(headers.body.toString()) as { headers: Record<string, string> };
    assert.equal(seen.headers['My-Added-Header'], 'added-value');
    assert.equal((await get(GW, s.listenPort, '/status/200', HOST)).status, 404);
    assert.equal((await get(GW, s.listenPort, '/get', 'other.example.org')).status, 404);
  });

  test('a change to the HTTPRoute in the API server applies without restarting anything', async () => {
    await apply(`/apis/gateway.networking.k8s.io/v1/namespaces/${s.ns.app}/httproutes/more`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'more', namespace: s.ns.app },
      spec: {
        parentRefs: [{ name: 'gateway', namespace: s.ns.gw }],
        hostnames: [HOST],
        rules: [{ matches: [{ path: { type: 'Exact', value: '/status/200' } }], backendRefs: [{ name: 'httpbin', port: 8000 }] }],
      },
    });
    await eventually(
      'the new HTTPRoute to apply',
      async () => ((await get(GW, s.listenPort, '/status/200', HOST)).status === 200 ? true : undefined),
      30_000,
      200,
    );
    assert.deepEqual([gw.proxy.pid, gw.controller?.pid], pids);
    assert.equal(gw.proxy.child.exitCode, null, 'the proxy was not restarted');
    assert.equal(gw.controller?.child.exitCode, null, 'the controller was not restarted');
  });
});
