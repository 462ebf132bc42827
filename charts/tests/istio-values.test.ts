// charts/gateway with the values an Istio user brings from Istio's gateway chart: where Istio's chart decides
// (PodDisruptionBudget, selector labels, NetworkPolicy, HPA metrics, the keys meshgate's chart lacked), the
// rendered objects are asserted against what Istio's templates produce; where it cannot apply, NOTES.txt says so.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GATEWAY_CHART, helm, ofKind, only, renderArgs, template, type K8sObject, type RenderOptions } from './helm.ts';
import type { Container, HorizontalPodAutoscaler, NetworkPolicy, PodDisruptionBudget, Service, Workload } from './k8s-types.ts';

const INGRESS = 'istio-ingressgateway';

function render(o: RenderOptions = {}, release = INGRESS): K8sObject[] {
  return template(GATEWAY_CHART, release, o);
}

function workload(objects: K8sObject[]): Workload {
  return only<Workload>(objects, 'Deployment');
}

function container(w: Workload, name: string): Container {
  const c = w.spec.template.spec.containers.find((x) => x.name === name);
  assert.ok(c, `container ${name}`);
  return c;
}

function notes(o: RenderOptions = {}): string {
  // --dry-run=client renders NOTES without a cluster.
  const r = helm(['install', '--dry-run=client', ...renderArgs(GATEWAY_CHART, INGRESS, o)]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.slice(r.stdout.indexOf('NOTES:'));
}

describe('PodDisruptionBudget, only when more than one replica is guaranteed (as Istio)', () => {
  const cases: { name: string; set: Record<string, string | number | boolean>; pdb: boolean }[] = [
    { name: 'autoscaling from 1 replica', set: {}, pdb: false },
    { name: 'autoscaling from 2 replicas', set: { 'autoscaling.minReplicas': 2 }, pdb: true },
    { name: 'no autoscaling, replicaCount 1', set: { 'autoscaling.enabled': false, replicaCount: 1 }, pdb: false },
    { name: 'no autoscaling, replicaCount 3', set: { 'autoscaling.enabled': false, replicaCount: 3 }, pdb: true },
    // replicaCount does not count while the HPA owns the replicas.
    { name: 'autoscaling from 1, replicaCount 3', set: { replicaCount: 3 }, pdb: false },
  ];
  for (const c of cases) {
    test(`podDisruptionBudget.minAvailable=1, ${c.name}: ${c.pdb ? 'a budget' : 'none'}`, () => {
      const o = render({ set: { 'podDisruptionBudget.minAvailable': 1, ...c.set } });
      const pdbs = ofKind<PodDisruptionBudget>(o, 'PodDisruptionBudget');
      assert.equal(pdbs.length, c.pdb ? 1 : 0);
      if (pdbs[0]) assert.deepEqual(pdbs[0].spec, { selector: { matchLabels: { app: INGRESS, istio: 'ingressgateway' } }, minAvailable: 1 });
    });
  }

  test('NOTES.txt says why a requested budget was left out, and says nothing when it was created or not asked for', () => {
    assert.match(notes({ set: { 'podDisruptionBudget.maxUnavailable': 1 } }), /podDisruptionBudget is set but no PodDisruptionBudget was created/);
    assert.doesNotMatch(notes({ set: { 'podDisruptionBudget.maxUnavailable': 1, 'autoscaling.minReplicas': 2 } }), /WARNING/);
    assert.doesNotMatch(notes(), /WARNING/);
  });
});

describe('selector labels', () => {
  test(`Istio's migration recipe (labels.app: "") keeps app: "" in the Deployment, Service and PDB selectors, as Istio's chart`, () => {
    const o = render({
      values: ['charts/tests/testdata/istio-migration-values.yaml'],
      set: { 'autoscaling.minReplicas': 2, 'podDisruptionBudget.minAvailable': 1 },
    });
    const selector = { app: '', istio: 'ingressgateway' };
    const d = workload(o);
    assert.equal(d.metadata.name, 'my-custom-gateway');
    assert.deepEqual(d.spec.selector.matchLabels, selector);
    assert.equal(d.spec.template.metadata.labels.app, '');
    assert.equal(d.spec.template.metadata.labels.foo, 'bar');
    assert.deepEqual(only<Service>(o, 'Service').spec.selector, selector);
    assert.deepEqual(only<PodDisruptionBudget>(o, 'PodDisruptionBudget').spec.selector.matchLabels, selector);
  });

  test('labels.istio: "" is kept as well', () => {
    const d = workload(render({ setJson: { labels: { istio: '' } } }));
    assert.deepEqual(d.spec.selector.matchLabels, { app: INGRESS, istio: '' });
  });

  test('NOTES.txt lists the pods with the same selector', () => {
    assert.ok(notes({ values: ['charts/tests/testdata/istio-migration-values.yaml'] }).includes('get pods -l app=,istio=ingressgateway'));
  });
});

describe('global.networkPolicy.enabled', () => {
  test('renders no NetworkPolicy by default', () => {
    assert.equal(ofKind(render(), 'NetworkPolicy').length, 0);
  });

  test("renders Istio's NetworkPolicy: in on 15021, 15020, 15090 and the Service target ports, out anywhere", () => {
    const np = only<NetworkPolicy>(render({ set: { 'global.networkPolicy.enabled': true } }), 'NetworkPolicy');
    assert.equal(np.apiVersion, 'networking.k8s.io/v1');
    assert.equal(np.metadata.name, INGRESS);
    assert.equal(np.metadata.namespace, 'istio-system');
    assert.deepEqual(np.spec.podSelector.matchLabels, { app: INGRESS, istio: 'ingressgateway' });
    assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(
      np.spec.ingress.flatMap((r) => r.ports.map((p) => `${p.protocol}/${p.port}`)),
      ['TCP/15021', 'TCP/15020', 'TCP/15090', 'TCP/15021', 'TCP/8080', 'TCP/8443'],
    );
    assert.deepEqual(np.spec.egress, [{}]);
  });

  test('a revision suffixes its name, as in Istio', () => {
    const np = only<NetworkPolicy>(render({ set: { 'global.networkPolicy.enabled': true, revision: 'canary' } }), 'NetworkPolicy');
    assert.equal(np.metadata.name, `${INGRESS}-canary`);
  });
});

describe('HPA metrics', () => {
  test('targetMemoryUtilizationPercentage adds the proxy container memory metric; {} (Istio default) adds none', () => {
    const withMemory = only<HorizontalPodAutoscaler>(render({ set: { 'autoscaling.targetMemoryUtilizationPercentage': 70 } }), 'HorizontalPodAutoscaler');
    assert.deepEqual(
      withMemory.spec.metrics.map((m) => [m.type, m.containerResource?.name, m.containerResource?.container, m.containerResource?.target.averageUtilization]),
      [
        ['ContainerResource', 'cpu', 'istio-proxy', 80],
        ['ContainerResource', 'memory', 'istio-proxy', 70],
      ],
    );
    const empty = only<HorizontalPodAutoscaler>(render({ setJson: { 'autoscaling.targetMemoryUtilizationPercentage': {} } }), 'HorizontalPodAutoscaler');
    assert.deepEqual(
      empty.spec.metrics.map((m) => m.containerResource?.name),
      ['cpu'],
    );
  });

  test('a non-empty object is still rejected as a memory target', () => {
    const r = helm(['template', ...renderArgs(GATEWAY_CHART, INGRESS, { setJson: { 'autoscaling.targetMemoryUtilizationPercentage': { value: 80 } } })]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /targetMemoryUtilizationPercentage/);
  });
});

describe("Istio's keys", () => {
  const o = render({ values: ['charts/tests/testdata/istio-keys-values.yaml'] });
  const d = workload(o);
  const pod = d.spec.template.spec;
  const proxy = container(d, 'istio-proxy');
  const svc = only<Service>(o, 'Service');

  test('imagePullPolicy sets the pull policy of both containers', () => {
    assert.deepEqual(
      pod.containers.filter((c) => c.name === 'istio-proxy' || c.name === 'controller').map((c) => c.imagePullPolicy),
      ['Always', 'Always'],
    );
    assert.equal(container(workload(render()), 'istio-proxy').imagePullPolicy, 'IfNotPresent');
  });

  test('lifecycle goes to the proxy container, envVarFrom after its env', () => {
    assert.deepEqual(proxy.lifecycle, { preStop: { exec: { command: ['sleep', '5'] } } });
    assert.deepEqual(proxy.env?.at(-1), { name: 'API_TOKEN', valueFrom: { secretKeyRef: { name: 'gateway-secrets', key: 'token' } } });
    assert.equal(container(d, 'controller').lifecycle, undefined);
  });

  test('initContainers and additionalContainers join the pod; istio-proxy and controller stay first', () => {
    assert.deepEqual(
      pod.initContainers?.map((c) => c.name),
      ['wait-for-config'],
    );
    assert.deepEqual(
      pod.containers.map((c) => c.name),
      ['istio-proxy', 'controller', 'log-shipper'],
    );
  });

  test('dnsPolicy and dnsConfig reach the pod spec', () => {
    assert.equal(pod.dnsPolicy, 'None');
    assert.deepEqual(pod.dnsConfig, { nameservers: ['10.96.0.10'], searches: ['istio-system.svc.cluster.local'] });
  });

  test("readinessProbe.httpGet replaces the default target; the chart's other timings stay", () => {
    assert.deepEqual(proxy.readinessProbe, {
      httpGet: { path: '/healthz/ready', port: 15021 },
      periodSeconds: 2,
      failureThreshold: 30,
      initialDelaySeconds: 1,
      timeoutSeconds: 3,
      successThreshold: 1,
    });
    const tcp = container(workload(render({ setJson: { 'readinessProbe.tcpSocket': { port: 15021 } } })), 'istio-proxy').readinessProbe;
    assert.deepEqual(tcp?.tcpSocket, { port: 15021 });
    assert.equal(tcp?.httpGet, undefined);
  });

  test('service.clusterIP, loadBalancerClass, allocateLoadBalancerNodePorts, internalTrafficPolicy, healthCheckNodePort', () => {
    assert.equal(svc.spec.clusterIP, '10.96.100.100');
    assert.equal(svc.spec.loadBalancerClass, 'service.k8s.aws/nlb');
    assert.equal(svc.spec.allocateLoadBalancerNodePorts, false);
    assert.equal(svc.spec.internalTrafficPolicy, 'Local');
    assert.equal(svc.spec.healthCheckNodePort, 32021);
  });

  test('service.selectorLabels join the Service selector only', () => {
    assert.deepEqual(svc.spec.selector, { app: INGRESS, istio: 'ingressgateway', 'gateway-pool': 'public' });
    assert.deepEqual(d.spec.selector.matchLabels, { app: INGRESS, istio: 'ingressgateway' });
  });

  test('the LoadBalancer-only fields are left out of a ClusterIP Service, as in Istio', () => {
    const s = only<Service>(
      render({ values: ['charts/tests/testdata/istio-keys-values.yaml'], set: { 'service.type': 'ClusterIP', 'service.externalTrafficPolicy': '' } }),
      'Service',
    );
    assert.equal(s.spec.loadBalancerClass, undefined);
    assert.equal(s.spec.allocateLoadBalancerNodePorts, undefined);
  });

  test("Istio's empty defaults and schema-only keys render like the chart's defaults and warn about nothing", () => {
    const plain = render();
    assert.deepEqual(
      o.map((x) => x.kind),
      plain.map((x) => x.kind),
    );
    assert.doesNotMatch(notes({ values: ['charts/tests/testdata/istio-keys-values.yaml'] }), /WARNING/);
  });

  test('revision, networkGateway, profile, platform and compatibilityVersion are accepted and NOTES.txt warns', () => {
    const set = { revision: 'canary', networkGateway: 'network2', profile: 'ambient', platform: 'openshift', compatibilityVersion: '1.24' };
    const r = render({ set });
    // No istio.io/rev (istiod must not take the pod for one of its revisions) and no topology.istio.io/network
    // (istiod would send other networks' traffic to this Service).
    for (const x of [workload(r).spec.template.metadata, only<Service>(r, 'Service').metadata]) {
      assert.equal(x.labels?.['istio.io/rev'], undefined);
      assert.equal(x.labels?.['topology.istio.io/network'], undefined);
    }
    assert.deepEqual(
      only<Service>(r, 'Service').spec.ports.map((p) => p.port),
      [15021, 80, 443],
    );
    const text = notes({ set });
    for (const m of [
      /revision="canary"/,
      /networkGateway="network2" is ignored/,
      /profile="ambient" is ignored/,
      /platform="openshift" is ignored/,
      /compatibilityVersion="1.24" is ignored/,
    ]) {
      assert.match(text, m);
    }
  });

  test('rbac.enabled=false warns that the roles are created anyway', () => {
    assert.match(notes({ set: { 'rbac.enabled': false } }), /rbac.enabled=false: the ClusterRole, Role and bindings are created anyway/);
    assert.match(notes({ set: { 'rbac.enabled': false, 'rbac.scope': 'namespace' } }), /rbac.enabled=false: the Roles and RoleBindings are created anyway/);
  });
});
