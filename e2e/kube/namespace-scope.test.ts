// A deployer with rights in one namespace only installs the gateway with rbac.scope=namespace, against a real API
// server with RBAC: helm runs with the kubeconfig of a ServiceAccount bound to a Role in that namespace (the CRDs
// were installed by the cluster admin, as docs/install.md says). The default chart is refused on its ClusterRole;
// the namespaced one installs, and its controller, running with the chart's ServiceAccount, serves the namespace's
// Gateway and VirtualService (and, with controller.watchNamespaces, a second namespace's) while a Gateway in another
// namespace stays unseen and no request is forbidden.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { get } from '../lib/http.ts';
import { GATEWAY_CHART, LOCAL_ONLY, startChartCluster, type ChartCluster } from './chart-cluster.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { HOST, gateway, virtualService } from './suite.ts';

const NS = 'team-a';
const APPS = 'team-a-apps';
const OTHER = 'team-b';
const RELEASE = 'istio-ingressgateway';
const DEPLOYER = 'deployer';

describe('kubernetes: rbac.scope=namespace, installed by a deployer with rights in its own namespaces only', { skip: LOCAL_ONLY }, () => {
  let c: ChartCluster;
  let deployer: string;
  let gw: GatewayPod | undefined;

  before(
    async () => {
      c = await startChartCluster([NS, APPS, OTHER]);
      // The owner of team-a and team-a-apps: every verb on every resource there, nothing outside them.
      await c.kube.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: DEPLOYER, namespace: NS } });
      for (const ns of [NS, APPS]) {
        await c.kube.apply({
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: { name: 'namespace-owner', namespace: ns },
          rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
        });
        await c.kube.apply({
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'namespace-owner', namespace: ns },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'namespace-owner' },
          subjects: [{ kind: 'ServiceAccount', name: DEPLOYER, namespace: NS }],
        });
      }
      const file = await c.cluster.serviceAccountKubeconfig(NS, DEPLOYER);
      assert.ok(file);
      deployer = file;
      await c.httpbinRoute(NS, { istio: 'ingressgateway' });
    },
    { timeout: 30 * 60_000 },
  );

  after(
    async () => {
      await gw?.stop();
      await c?.cleanup();
    },
    { timeout: 120_000 },
  );

  test('the default (cluster-scoped) chart is refused: the deployer may not create the ClusterRole', async () => {
    const err = await c.helm(['install', RELEASE, GATEWAY_CHART, '--namespace', NS], deployer).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    assert.ok(err, 'helm install failed');
    assert.match(err.message, /clusterroles\.rbac\.authorization\.k8s\.io .* is forbidden/);
    await c.helm(['uninstall', RELEASE, '--namespace', NS], deployer).catch(() => undefined);
  });

  test('with rbac.scope=namespace the same deployer installs it: Roles in its namespace, nothing cluster-scoped', async () => {
    await c.helm(['install', RELEASE, GATEWAY_CHART, '--namespace', NS, '--set', 'rbac.scope=namespace'], deployer);
    const kinds = (await c.manifest(RELEASE, NS)).map((o) => `${o.kind} ${o.metadata.namespace ?? '-'}`).sort();
    assert.deepEqual(kinds, [
      `ConfigMap ${NS}`,
      `Deployment ${NS}`,
      `HorizontalPodAutoscaler ${NS}`,
      `Role ${NS}`,
      `Role ${NS}`,
      `RoleBinding ${NS}`,
      `RoleBinding ${NS}`,
      `Service ${NS}`,
      `ServiceAccount ${NS}`,
    ]);
    assert.equal(await c.kube.get('ClusterRole', undefined, `meshgate-${NS}-${RELEASE}`), undefined);
  });

  test("with controller.watchNamespaces the deployer's second namespace gets the controller's Role and RoleBinding too", async () => {
    await c.helm(['upgrade', RELEASE, GATEWAY_CHART, '--namespace', NS, '--reuse-values', '--set', `controller.watchNamespaces={${NS},${APPS}}`], deployer);
    assert.ok(await c.kube.get('Role', APPS, `meshgate-${NS}-${RELEASE}`));
    assert.ok(await c.kube.get('RoleBinding', APPS, `meshgate-${NS}-${RELEASE}`));
  });

  test("its controller, with the chart's ServiceAccount, serves the namespaces' routes and does not see another namespace", async () => {
    await c.kube.apply(gateway('other-gateway', OTHER, { istio: 'ingressgateway' }, ['other.example.com']));
    await c.kube.apply(
      virtualService('other', OTHER, { hosts: ['other.example.com'], gateways: ['other-gateway'], prefixes: ['/'], host: `httpbin.${NS}.svc.cluster.local` }),
    );
    const sa = await c.cluster.serviceAccountKubeconfig(NS, RELEASE);
    assert.ok(sa);
    await c.kube.apply(gateway('apps-gateway', APPS, { istio: 'ingressgateway' }, ['apps.example.com']));
    await c.kube.apply(
      virtualService('apps', APPS, { hosts: ['apps.example.com'], gateways: ['apps-gateway'], prefixes: ['/'], host: `httpbin.${NS}.svc.cluster.local` }),
    );
    gw = await c.startGateway(RELEASE, NS, sa);
    assert.ok(gw.started.controller?.args.includes(`--watch-namespaces=${NS},${APPS}`));
    await c.waitStatus(8080, '/status/200', 200);
    assert.equal((await get('127.0.0.1', 8080, '/headers', HOST)).header('x-httpbin-instance'), `httpbin-${NS}`);
    await c.waitStatus(8080, '/status/200', 200, 'apps.example.com');
    assert.equal((await get('127.0.0.1', 8080, '/status/200', 'other.example.com')).status, 404, `${OTHER}'s Gateway is not watched`);
    assert.doesNotMatch(await gw.adminGet('/config_dump'), /other\.example\.com/);
    assert.doesNotMatch(gw.controller?.output() ?? '', /forbidden|check the credentials and RBAC/i);
  });
});
