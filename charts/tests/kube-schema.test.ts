// The charts' renders validated against the Kubernetes API of the oldest and the newest release they support
// (kubeconform-style: unknown fields, types, required fields, enums), each render made with that release as
// helm's --kube-version. The specs come from scripts/fetch-k8s-openapi.sh (the k8s.io/kubernetes Go module).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { BASE_CHART, GATEWAY_CHART, REPO, helm, parseManifests, renderArgs, type K8sObject, type RenderOptions } from './helm.ts';
import { loadKubeSpec, validateObject, type KubeSpec } from './kube-openapi.ts';

const specs: KubeSpec[] = [];

before(() => {
  const script = join(REPO, 'scripts/fetch-k8s-openapi.sh');
  let out: string;
  try {
    out = execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? String(e);
    throw new Error(`scripts/fetch-k8s-openapi.sh failed, so the renders cannot be validated against Kubernetes' API:\n${stderr}`, { cause: e });
  }
  for (const line of out.trim().split('\n')) {
    const [version, dir] = line.split(' ');
    assert.ok(version && dir, `scripts/fetch-k8s-openapi.sh printed '${line}', expected '<version> <directory>'`);
    specs.push(loadKubeSpec(version, dir));
  }
});

function render(chart: string, release: string, spec: KubeSpec, o: RenderOptions = {}): K8sObject[] {
  const r = helm(['template', ...renderArgs(chart, release, o), '--kube-version', spec.version]);
  assert.equal(r.status, 0, `helm template ${release} --kube-version ${spec.version}: ${r.stderr}`);
  return parseManifests(r.stdout);
}

describe('the versions validated against', () => {
  test("the oldest is the minor of both charts' kubeVersion, the newest the e2e API server's (e2e/kube/apiserver/go.mod)", () => {
    assert.equal(specs.length, 2);
    for (const chart of [GATEWAY_CHART, BASE_CHART]) {
      const kubeVersion = (parse(readFileSync(join(chart, 'Chart.yaml'), 'utf8')) as { kubeVersion: string }).kubeVersion;
      const minor = /^>=1\.(\d+)\.0-0$/.exec(kubeVersion)?.[1];
      assert.ok(minor, `${chart}/Chart.yaml kubeVersion '${kubeVersion}' is not '>=1.N.0-0'`);
      assert.match(specs[0]?.version ?? '', new RegExp(`^v1\\.${minor}\\.\\d+$`), `oldest validated version vs ${chart}/Chart.yaml`);
    }
    const goMod = readFileSync(join(REPO, 'e2e/kube/apiserver/go.mod'), 'utf8');
    assert.ok(goMod.includes(`k8s.io/kubernetes ${specs[1]?.version}\n`), `newest validated version ${specs[1]?.version} vs e2e/kube/apiserver/go.mod`);
  });

  test('helm refuses to install either chart on the Kubernetes minor before the oldest', () => {
    const minor = Number(/^v1\.(\d+)\./.exec(specs[0]?.version ?? '')?.[1]);
    for (const chart of [GATEWAY_CHART, BASE_CHART]) {
      const r = helm(['template', 'x', chart, '--kube-version', `1.${minor - 1}.99`]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /chart requires kubeVersion: >=1\.\d+\.0-0 which is incompatible with Kubernetes v1\.\d+\.99/);
    }
  });
});

describe('the validator, on the real specs', () => {
  const deployment = (container: Record<string, unknown>, spec: Record<string, unknown> = {}): K8sObject =>
    ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd' },
      spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [container] } }, ...spec },
    }) as K8sObject;

  test('accepts a valid Deployment, with ports and quantities written either way', () => {
    for (const spec of specs) {
      const c = { name: 'c', image: 'i', ports: [{ containerPort: 80 }], resources: { limits: { cpu: 2, memory: '1Gi' }, requests: { cpu: '100m' } } };
      assert.deepEqual(validateObject(spec, deployment(c, { strategy: { rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } } })), []);
    }
  });

  test('reports unknown fields, wrong types, missing required fields and values outside an enum, at their path', () => {
    for (const spec of specs) {
      const c = { image: 'i', imagePullPolicy: 'Sometimes', ports: [{ containerPort: '80' }], resources: { limits: { cpu: 'two' } }, colour: 'red' };
      assert.deepEqual(validateObject(spec, deployment(c)).sort(), [
        'Deployment/d: spec.template.spec.containers[0].colour: unknown field',
        'Deployment/d: spec.template.spec.containers[0].imagePullPolicy: unsupported value "Sometimes": must be one of Always, IfNotPresent, Never',
        'Deployment/d: spec.template.spec.containers[0].name: required value',
        'Deployment/d: spec.template.spec.containers[0].ports[0].containerPort: must be of type integer, got string',
        'Deployment/d: spec.template.spec.containers[0].resources.limits.cpu: "two" is not a quantity',
      ]);
    }
  });

  test('tells the versions apart: a field added after the oldest (lifecycle.stopSignal, 1.33) is unknown there only', () => {
    const c = { name: 'c', image: 'i', lifecycle: { stopSignal: 'SIGTERM' } };
    const [oldest, newest] = specs as [KubeSpec, KubeSpec];
    assert.deepEqual(validateObject(oldest, deployment(c)), ['Deployment/d: spec.template.spec.containers[0].lifecycle.stopSignal: unknown field']);
    assert.deepEqual(validateObject(newest, deployment(c)), []);
  });

  test("a CRD's x-kubernetes-validations may not carry reason or fieldPath before 1.28", () => {
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'xs.example.com' },
      spec: {
        group: 'example.com',
        scope: 'Namespaced',
        names: { plural: 'xs', kind: 'X' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-validations': [{ rule: 'true', message: 'm', reason: 'FieldValueInvalid' }] } },
          },
        ],
      },
    } as K8sObject;
    const [oldest, newest] = specs as [KubeSpec, KubeSpec];
    assert.deepEqual(validateObject(oldest, crd), [
      'CustomResourceDefinition/xs.example.com: spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].reason: unknown field',
    ]);
    assert.deepEqual(validateObject(newest, crd), []);
  });

  test('reports a kind the version does not serve', () => {
    for (const spec of specs) {
      const hpa = { apiVersion: 'autoscaling/v2beta2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'h' } } as K8sObject;
      assert.deepEqual(validateObject(spec, hpa), [
        `HorizontalPodAutoscaler/h: autoscaling/v2beta2 HorizontalPodAutoscaler is not served by Kubernetes ${spec.version}`,
      ]);
    }
  });
});

describe('the renders are valid objects of the oldest and the newest supported Kubernetes', () => {
  const testdata = readdirSync(join(REPO, 'charts/tests/testdata'))
    .filter((f) => f.endsWith('-values.yaml'))
    .sort();
  const renders: { name: string; chart: string; release: string; o: RenderOptions; kinds: string[] }[] = [
    { name: 'charts/base', chart: BASE_CHART, release: 'istio-base', o: {}, kinds: ['CustomResourceDefinition'] },
    { name: 'default values', chart: GATEWAY_CHART, release: 'istio-ingressgateway', o: {}, kinds: ['Deployment', 'Service', 'HorizontalPodAutoscaler'] },
    {
      name: 'the egress values',
      chart: GATEWAY_CHART,
      release: 'istio-egressgateway',
      o: { values: ['charts/gateway/values-egress.yaml'] },
      kinds: ['Deployment', 'Service'],
    },
    ...testdata.map((f) => ({
      name: f,
      chart: GATEWAY_CHART,
      release: 'istio-ingressgateway',
      o: { values: [`charts/tests/testdata/${f}`] },
      kinds: ['Deployment'],
    })),
    {
      name: 'autoscaling on CPU and memory with a behaviour, and a PodDisruptionBudget',
      chart: GATEWAY_CHART,
      release: 'istio-ingressgateway',
      o: {
        set: { 'autoscaling.minReplicas': 2, 'autoscaling.targetMemoryUtilizationPercentage': 75 },
        setJson: {
          'autoscaling.autoscaleBehavior': { scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } },
          podDisruptionBudget: { maxUnavailable: '25%', unhealthyPodEvictionPolicy: 'AlwaysAllow' },
        },
      },
      kinds: ['HorizontalPodAutoscaler', 'PodDisruptionBudget'],
    },
    {
      name: 'a fixed replica count with a PodDisruptionBudget',
      chart: GATEWAY_CHART,
      release: 'istio-ingressgateway',
      o: { set: { 'autoscaling.enabled': false, replicaCount: 3, 'podDisruptionBudget.minAvailable': 2 } },
      kinds: ['Deployment', 'PodDisruptionBudget'],
    },
    {
      name: 'the NetworkPolicy',
      chart: GATEWAY_CHART,
      release: 'istio-ingressgateway',
      o: { set: { 'global.networkPolicy.enabled': true } },
      kinds: ['NetworkPolicy'],
    },
    {
      name: 'namespace-scoped RBAC over two watched namespaces',
      chart: GATEWAY_CHART,
      release: 'istio-ingressgateway',
      o: { set: { 'rbac.scope': 'namespace' }, setJson: { 'controller.watchNamespaces': ['team-a', 'team-b'] } },
      kinds: ['Role', 'RoleBinding'],
    },
    {
      name: "Istio's 80->80 and 443->443 (the unprivileged-port sysctl) on a NodePort Service",
      chart: GATEWAY_CHART,
      release: 'istio-ingressgateway',
      o: {
        set: { 'service.type': 'NodePort' },
        setJson: {
          'service.ports': [
            { name: 'http2', port: 80, targetPort: 80, nodePort: 30080 },
            { name: 'https', port: 443, targetPort: 443, protocol: 'TCP' },
          ],
        },
      },
      kinds: ['Deployment', 'Service'],
    },
    { name: 'a DaemonSet', chart: GATEWAY_CHART, release: 'istio-ingressgateway', o: { set: { kind: 'DaemonSet' } }, kinds: ['DaemonSet'] },
  ];
  for (const r of renders) {
    test(`${r.name}: ${r.kinds.join(', ')} and the rest`, () => {
      for (const spec of specs) {
        const objects = render(r.chart, r.release, spec, r.o);
        for (const kind of r.kinds)
          assert.ok(
            objects.some((o) => o.kind === kind),
            `${r.name} renders a ${kind}`,
          );
        assert.deepEqual(
          objects.flatMap((o) => validateObject(spec, o)),
          [],
          `${r.name} on Kubernetes ${spec.version}`,
        );
      }
    });
  }
});
