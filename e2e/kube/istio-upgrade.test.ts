// Upgrading in place from a release of Istio's own gateway chart (istio.io/istio's manifests/charts/gateway, from
// the Go module cache, never committed), against a real API server: `helm install istio-ingressgateway <Istio's
// chart> -f values`, then `helm upgrade istio-ingressgateway ./charts/gateway` with the same values, and the
// installed Deployment, started as a kubelet would, serves Istio's ingress walkthrough. Also `--reuse-values`
// (the Istio release's values, meshgate's own keys filled from its values.yaml), an install with Istio's
// values.yaml itself, and, for the next upgrade, `--reset-then-reuse-values` as docs/install.md says.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { KubeObject } from '../../controller/model/objects.ts';
import { get } from '../lib/http.ts';
import { REPO } from '../lib/process.ts';
import { GATEWAY_CHART, LOCAL_ONLY, istioGatewayChart, startChartCluster, type ChartCluster } from './chart-cluster.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { HOST } from './suite.ts';

const RELEASE = 'istio-ingressgateway';
// An Istio user's values file (written for Istio's gateway chart; used unchanged by both charts).
const USER_VALUES = join(REPO, 'charts/tests/testdata/istio-gateway-values.yaml');
const APP = 'default';

interface Deployment extends KubeObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: { securityContext?: { sysctls?: { name: string; value: string }[] }; containers: { name: string; image: string; args?: string[] }[] };
    };
  };
}
interface Service extends KubeObject {
  spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: number }[] };
}

const ports = (s: Service): string[] => s.spec.ports.map((p) => `${p.name} ${p.port}->${p.targetPort}`);
const chartVersion = (): string => /^appVersion:\s*"?([^"\s]+)/m.exec(readFileSync(join(GATEWAY_CHART, 'Chart.yaml'), 'utf8'))?.[1] ?? '';

describe("kubernetes: helm upgrade from a release of Istio's gateway chart", { skip: LOCAL_ONLY }, () => {
  let c: ChartCluster;
  let istioChart: string;
  let gw: GatewayPod | undefined;

  const deployment = async (ns: string): Promise<Deployment> => {
    const d = await c.kube.get('Deployment', ns, RELEASE);
    assert.ok(d, `Deployment ${ns}/${RELEASE}`);
    return d as Deployment;
  };
  const service = async (ns: string): Promise<Service> => (await c.kube.get('Service', ns, RELEASE)) as Service;
  const saKubeconfig = async (ns: string): Promise<string> => {
    const file = await c.cluster.serviceAccountKubeconfig(ns, RELEASE);
    assert.ok(file);
    return file;
  };

  before(
    async () => {
      istioChart = istioGatewayChart();
      c = await startChartCluster(['istio-system', 'istio-ingress', 'istio-values', APP]);
      await c.httpbinRoute(APP, { istio: 'ingressgateway' });
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

  let istioDeployment: Deployment;

  test("helm install of Istio's chart with the user's values: Istio's objects, names, labels and selectors", async () => {
    await c.helm(['install', RELEASE, istioChart, '--namespace', 'istio-system', '-f', USER_VALUES]);
    istioDeployment = await deployment('istio-system');
    assert.deepEqual(istioDeployment.spec.selector.matchLabels, { app: RELEASE, istio: 'ingressgateway' });
    assert.equal(istioDeployment.spec.template.spec.containers[0]?.image, 'auto', "Istio's gateway pod waits for istiod's injection");
    assert.equal(istioDeployment.spec.template.metadata.labels['sidecar.istio.io/inject'], 'true');
    assert.equal((await c.kube.get('Role', 'istio-system', RELEASE))?.metadata.name, RELEASE);
  });

  test('helm upgrade to ./charts/gateway with the same values: the same Deployment and Service now run meshgate', async () => {
    await c.helm(['upgrade', RELEASE, GATEWAY_CHART, '--namespace', 'istio-system', '-f', USER_VALUES]);
    const d = await deployment('istio-system');
    assert.equal(d.metadata.uid, istioDeployment.metadata.uid, 'updated in place, not replaced');
    assert.deepEqual(d.spec.selector.matchLabels, istioDeployment.spec.selector.matchLabels, 'the immutable selector is unchanged');
    assert.deepEqual(
      d.spec.template.spec.containers.map((x) => [x.name, x.image]),
      [
        ['istio-proxy', `meshgate:${chartVersion()}`],
        ['controller', `meshgate:${chartVersion()}`],
      ],
    );
    assert.equal(d.spec.template.metadata.labels['sidecar.istio.io/inject'], 'false');
    assert.equal(d.metadata.labels?.team, 'platform', "the user's labels");
    const svc = await service('istio-system');
    assert.deepEqual(svc.spec.selector, { app: RELEASE, istio: 'ingressgateway' });
    assert.deepEqual(ports(svc), ['status-port 15021->15021', 'http2 80->8080', 'https 443->8443'], "the user's ports");
    assert.deepEqual((await c.manifest(RELEASE, 'istio-system')).map((o) => o.kind).sort(), [
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
  });

  test("the upgraded gateway serves the walkthrough: the httpbin route 200, an unknown host 404, with the chart's RBAC only", async () => {
    gw = await c.startGateway(RELEASE, 'istio-system', await saKubeconfig('istio-system'));
    await c.waitStatus(8080, '/status/200', 200);
    const r = await get('127.0.0.1', 8080, '/headers', HOST);
    assert.equal(r.header('server'), 'istio-envoy');
    assert.equal(r.header('x-httpbin-instance'), `httpbin-${APP}`);
    assert.equal((await get('127.0.0.1', 8080, '/status/200', 'nope.example.com')).status, 404);
    assert.doesNotMatch(gw.controller?.output() ?? '', /forbidden|check the credentials and RBAC/i);
    await gw.stop();
    gw = undefined;
  });

  test("helm upgrade --reuse-values from an Istio release: Istio's values stay, meshgate's own keys come from its values.yaml", async () => {
    await c.helm(['install', RELEASE, istioChart, '--namespace', 'istio-ingress', '-f', USER_VALUES, '--set', 'service.ports[1].targetPort=80']);
    await c.helm(['upgrade', RELEASE, GATEWAY_CHART, '--namespace', 'istio-ingress', '--reuse-values']);
    const d = await deployment('istio-ingress');
    assert.deepEqual(
      d.spec.template.spec.containers.map((x) => [x.name, x.image]),
      [
        ['istio-proxy', `meshgate:${chartVersion()}`],
        ['controller', `meshgate:${chartVersion()}`],
      ],
    );
    assert.ok(d.spec.template.spec.containers[0]?.args?.includes('--drain-seconds=5'), 'proxy.drainDuration from values.yaml');
    // Istio's values carried over: its 80 -> 80 target port from --set, so the sysctl that lets uid 1337 bind it.
    assert.deepEqual(ports(await service('istio-ingress')), ['status-port 15021->15021', 'http2 80->80', 'https 443->8443']);
    assert.deepEqual(d.spec.template.spec.securityContext?.sysctls, [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }]);
    assert.equal(d.metadata.labels?.team, 'platform');

    gw = await c.startGateway(RELEASE, 'istio-ingress', await saKubeconfig('istio-ingress'));
    await c.waitStatus(80, '/status/200', 200);
    assert.equal((await get('127.0.0.1', 80, '/headers', HOST)).header('x-httpbin-instance'), `httpbin-${APP}`);
    await gw.stop();
    gw = undefined;
  });

  test("helm install ./charts/gateway -f Istio's own values.yaml, unmodified: Istio's 80/443 ports, served on 80", async () => {
    await c.helm(['install', RELEASE, GATEWAY_CHART, '--namespace', 'istio-values', '-f', join(istioChart, 'values.yaml')]);
    const d = await deployment('istio-values');
    assert.deepEqual(ports(await service('istio-values')), ['status-port 15021->15021', 'http2 80->80', 'https 443->443']);
    assert.equal(d.metadata.labels?.['istio.io/dataplane-mode'], 'none', "Istio's values.yaml labels");
    assert.deepEqual(d.spec.template.spec.securityContext?.sysctls, [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }]);
    gw = await c.startGateway(RELEASE, 'istio-values', await saKubeconfig('istio-values'));
    await c.waitStatus(80, '/status/200', 200);
    await gw.stop();
    gw = undefined;
  });

  test("the next upgrade with --reset-then-reuse-values keeps the user's values and takes the new chart's defaults", async () => {
    await c.helm(['upgrade', RELEASE, GATEWAY_CHART, '--namespace', 'istio-system', '--reset-then-reuse-values', '--set', 'proxy.drainDuration=7s']);
    const d = await deployment('istio-system');
    assert.ok(d.spec.template.spec.containers[0]?.args?.includes('--drain-seconds=7'), 'the new --set');
    assert.equal(d.metadata.labels?.team, 'platform', "the release's user values");
    assert.deepEqual(ports(await service('istio-system')), ['status-port 15021->15021', 'http2 80->8080', 'https 443->8443']);
    const values = await c.helm(['get', 'values', RELEASE, '--namespace', 'istio-system', '-o', 'json']);
    assert.equal((JSON.parse(values.slice(values.indexOf('{'))) as { proxy?: { drainDuration?: string } }).proxy?.drainDuration, '7s');
  });
});
