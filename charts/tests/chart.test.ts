// charts/gateway: helm lint, and `helm template` output asserted object by object: what Istio's gateway chart
// produces (names, labels, Service ports), with meshgate's two containers wired as the CLI contract says.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { GATEWAY_CHART, REPO, helm, ofKind, only, renderArgs, template, templateError, type K8sObject, type RenderOptions } from './helm.ts';
import type { Container, EnvVar, HorizontalPodAutoscaler, PodDisruptionBudget, PolicyRule, Role, RoleBinding, Service, Workload } from './k8s-types.ts';
import { restrictedPodSecurityViolations } from './pod-security.ts';

const INGRESS = 'istio-ingressgateway';
const EGRESS = 'istio-egressgateway';
const NAMESPACE = 'istio-system';

function render(release: string, o: RenderOptions = {}): K8sObject[] {
  return template(GATEWAY_CHART, release, o);
}

function workload(objects: K8sObject[]): Workload {
  return only<Workload>(objects, 'Deployment');
}

function container(w: Workload, name: string): Container {
  const c = w.spec.template.spec.containers.find((x) => x.name === name);
  assert.ok(c, `container ${name} in ${w.metadata.name}`);
  return c;
}

function env(c: Container, name: string): EnvVar | undefined {
  return c.env?.find((e) => e.name === name);
}

function portsOf(c: Container): { name?: string; containerPort: number; protocol?: string }[] {
  return c.ports ?? [];
}

/** Rules as sorted strings, so that equality ignores rule and list order but nothing else. */
function ruleSet(rules: PolicyRule[]): string[] {
  return rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => `${g || 'core'}/${res}: ${[...r.verbs].sort().join(',')}`))).sort();
}

describe('helm lint', () => {
  for (const values of [[], ['charts/gateway/values-egress.yaml']]) {
    test(`charts/gateway lints with --strict${values.length ? ' and the egress values' : ''}`, () => {
      const args = ['lint', '--strict', GATEWAY_CHART, ...values.flatMap((v) => ['--values', join(REPO, v)])];
      const r = helm(args);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });
  }
});

describe('istio-ingressgateway with default values', () => {
  const objects = render(INGRESS);
  const deploy = workload(objects);
  const pod = deploy.spec.template.spec;
  const proxy = container(deploy, 'istio-proxy');
  const controller = container(deploy, 'controller');
  const service = only<Service>(objects, 'Service');

  test('renders a ServiceAccount, RBAC, Service, the mesh ConfigMap, Deployment and HPA, and no PodDisruptionBudget', () => {
    assert.deepEqual(objects.map((o) => o.kind).sort(), [
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
  });

  test('names objects after the release and puts the namespaced ones in the release namespace', () => {
    for (const o of objects) {
      if (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding') {
        assert.equal(o.metadata.name, `meshgate-${NAMESPACE}-${INGRESS}`);
        assert.equal(o.metadata.namespace, undefined);
      } else if (o.kind === 'ConfigMap') {
        assert.equal(o.metadata.name, `${INGRESS}-mesh`);
        assert.equal(o.metadata.namespace, NAMESPACE);
      } else {
        assert.equal(o.metadata.name, INGRESS, o.kind);
        assert.equal(o.metadata.namespace, NAMESPACE, o.kind);
      }
    }
  });

  test('labels app=istio-ingressgateway and istio=ingressgateway on every object, the pods and the selectors', () => {
    const selector = { app: INGRESS, istio: 'ingressgateway' };
    for (const o of objects) {
      assert.equal(o.metadata.labels?.app, INGRESS, o.kind);
      assert.equal(o.metadata.labels?.istio, 'ingressgateway', o.kind);
    }
    assert.deepEqual(deploy.spec.selector.matchLabels, selector);
    assert.deepEqual(service.spec.selector, selector);
    const podLabels = deploy.spec.template.metadata.labels;
    assert.equal(podLabels.app, INGRESS);
    assert.equal(podLabels.istio, 'ingressgateway');
  });

  test('asks an Istio installed in the cluster not to inject a sidecar into the gateway pods', () => {
    assert.equal(deploy.spec.template.metadata.labels['sidecar.istio.io/inject'], 'false');
  });

  test("Service is a LoadBalancer mapping 15021->15021, 80->8080 and 443->8443 as Istio's legacy gateways", () => {
    assert.equal(service.spec.type, 'LoadBalancer');
    assert.deepEqual(service.spec.ports, [
      { name: 'status-port', port: 15021, protocol: 'TCP', targetPort: 15021 },
      { name: 'http2', port: 80, protocol: 'TCP', targetPort: 8080 },
      { name: 'https', port: 443, protocol: 'TCP', targetPort: 8443 },
    ]);
    assert.equal(service.spec.externalTrafficPolicy, undefined);
    assert.equal(service.spec.loadBalancerIP, undefined);
  });

  test('the proxy container declares 8080, 8443, 15021 and 15090 (http-envoy-prom)', () => {
    assert.deepEqual(portsOf(proxy), [
      { name: 'status-port', containerPort: 15021, protocol: 'TCP' },
      { name: 'http2', containerPort: 8080, protocol: 'TCP' },
      { name: 'https', containerPort: 8443, protocol: 'TCP' },
      { name: 'http-envoy-prom', containerPort: 15090, protocol: 'TCP' },
    ]);
  });

  test("Prometheus scrapes the controller's merged metrics on 15020 /stats/prometheus", () => {
    assert.deepEqual(deploy.spec.template.metadata.annotations, {
      'prometheus.io/port': '15020',
      'prometheus.io/scrape': 'true',
      'prometheus.io/path': '/stats/prometheus',
    });
    assert.deepEqual(portsOf(controller), [{ name: 'http-monitoring', containerPort: 15020, protocol: 'TCP' }]);
    assert.ok(controller.args?.includes('--merged-metrics-port=15020'));
  });

  test("the proxy runs `meshgate proxy` against the controller's Unix socket, with Istio's port numbers", () => {
    assert.equal(proxy.image, 'meshgate:0.1.0');
    assert.deepEqual(proxy.command, ['meshgate']);
    assert.deepEqual(proxy.args, [
      'proxy',
      '--xds-socket=/etc/istio/proxy/XDS',
      '--admin-port=15000',
      '--status-port=15021',
      '--metrics-port=15090',
      '--concurrency=$(ISTIO_CPU_LIMIT)',
      '--drain-seconds=5',
      '--labels-file=/etc/istio/pod/labels',
      '--annotations-file=/etc/istio/pod/annotations',
      '--mesh-config=/etc/istio/config/mesh',
    ]);
    // Its identity in Istio's metrics: the Deployment's name and the pod's labels (Downward API).
    assert.deepEqual(
      proxy.env?.find((e) => e.name === 'ISTIO_META_WORKLOAD_NAME'),
      { name: 'ISTIO_META_WORKLOAD_NAME', value: deploy.metadata.name },
    );
    assert.ok(proxy.volumeMounts?.some((m) => m.name === 'istio-podinfo' && m.mountPath === '/etc/istio/pod'));
  });

  test('the controller runs `meshgate controller` serving xDS on the socket the proxy dials', () => {
    assert.equal(controller.image, proxy.image);
    assert.deepEqual(controller.command, ['meshgate']);
    assert.deepEqual(controller.args, [
      'controller',
      '--xds-socket=/etc/istio/proxy/XDS',
      '--merged-metrics-port=15020',
      '--labels-file=/etc/istio/pod/labels',
      '--annotations-file=/etc/istio/pod/annotations',
      '--mesh-config=/etc/istio/config/mesh',
    ]);
  });

  test('both containers know their pod from the Downward API; the proxy also gets INSTANCE_IP', () => {
    for (const c of [proxy, controller]) {
      assert.deepEqual(env(c, 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', c.name);
      assert.deepEqual(env(c, 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace', c.name);
    }
    assert.equal(env(proxy, 'INSTANCE_IP')?.valueFrom?.fieldRef?.fieldPath, 'status.podIP');
    assert.equal(env(controller, 'INSTANCE_IP'), undefined);
  });

  test("the proxy's concurrency is its CPU limit in whole cores (ISTIO_CPU_LIMIT), as Istio sizes Envoy", () => {
    assert.deepEqual(env(proxy, 'ISTIO_CPU_LIMIT')?.valueFrom?.resourceFieldRef, {
      containerName: 'istio-proxy',
      resource: 'limits.cpu',
      divisor: '1',
    });
    assert.equal(proxy.resources?.limits?.cpu, '2000m');
  });

  test('readiness is GET /healthz/ready on the status port 15021', () => {
    assert.deepEqual(proxy.readinessProbe?.httpGet, { path: '/healthz/ready', port: 15021, scheme: 'HTTP' });
    assert.equal(controller.readinessProbe, undefined);
  });

  test("xDS goes over a Unix socket in an emptyDir both containers mount at /etc/istio/proxy (as Istio's), never a TCP port", () => {
    assert.deepEqual(
      pod.volumes?.find((v) => v.name === 'istio-envoy'),
      { name: 'istio-envoy', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    );
    for (const c of [proxy, controller]) {
      assert.deepEqual(
        c.volumeMounts?.find((m) => m.name === 'istio-envoy'),
        { name: 'istio-envoy', mountPath: '/etc/istio/proxy' },
        c.name,
      );
      assert.ok(c.args?.includes('--xds-socket=/etc/istio/proxy/XDS'), `${c.name} args`);
      assert.equal(
        c.args?.some((a) => a.startsWith('--xds-address')),
        false,
        `${c.name}: no TCP xDS`,
      );
      assert.equal(
        portsOf(c).some((p) => p.containerPort === 15010),
        false,
        `${c.name}: no xDS container port`,
      );
    }
    // The socket is 0600: the proxy reaches it only as the controller's user.
    assert.equal(pod.securityContext?.runAsUser, 1337);
    for (const c of [proxy, controller]) assert.equal(c.securityContext?.runAsUser, pod.securityContext?.runAsUser, c.name);
  });

  test('the controller reads the pod labels and annotations from downward-API files in /etc/istio/pod, as Istio mounts them', () => {
    const vol = pod.volumes?.find((v) => v.name === 'istio-podinfo');
    assert.deepEqual(vol?.downwardAPI?.items, [
      { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
      { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
    ]);
    assert.deepEqual(
      controller.volumeMounts?.find((m) => m.name === 'istio-podinfo'),
      { name: 'istio-podinfo', mountPath: '/etc/istio/pod', readOnly: true },
    );
  });

  test('only the controller holds a service-account token; the proxy has no API credentials', () => {
    assert.equal(pod.serviceAccountName, INGRESS);
    assert.equal(pod.automountServiceAccountToken, false);
    const vol = pod.volumes?.find((v) => v.name === 'kube-api-access');
    const sources = vol?.projected?.sources ?? [];
    assert.equal(sources.find((s) => s.serviceAccountToken)?.serviceAccountToken?.path, 'token');
    assert.equal(sources.find((s) => s.configMap)?.configMap?.name, 'kube-root-ca.crt');
    assert.equal(sources.find((s) => s.downwardAPI)?.downwardAPI?.items[0]?.path, 'namespace');
    assert.deepEqual(
      controller.volumeMounts?.find((m) => m.name === 'kube-api-access'),
      { name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
    );
    assert.equal(
      proxy.volumeMounts?.find((m) => m.name === 'kube-api-access'),
      undefined,
    );
  });

  test('both containers run as uid/gid 1337 with a read-only root filesystem and no capabilities', () => {
    for (const c of [proxy, controller]) {
      assert.deepEqual(c.securityContext, {
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        privileged: false,
        readOnlyRootFilesystem: true,
        runAsUser: 1337,
        runAsGroup: 1337,
        runAsNonRoot: true,
      });
      // A read-only root filesystem leaves only mounts writable: each one is read-only or an emptyDir.
      for (const m of c.volumeMounts ?? []) {
        const vol = pod.volumes?.find((v) => v.name === m.name);
        assert.ok(m.readOnly === true || vol?.emptyDir, `${c.name} mount ${m.name}`);
      }
    }
    assert.deepEqual(pod.securityContext, {
      runAsUser: 1337,
      runAsGroup: 1337,
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  test('the pod meets the restricted Pod Security Standard', () => {
    assert.deepEqual(restrictedPodSecurityViolations(pod), []);
  });

  test("the termination grace period (30s) outlasts the proxy's drain (5s)", () => {
    assert.equal(pod.terminationGracePeriodSeconds, 30);
    assert.ok(proxy.args?.includes('--drain-seconds=5'));
  });

  test('the HPA (autoscaling/v2) scales the Deployment from 1 to 5 at 80% CPU and owns its replica count', () => {
    const hpa = only<HorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler');
    assert.equal(hpa.apiVersion, 'autoscaling/v2');
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: INGRESS });
    assert.equal(hpa.spec.minReplicas, 1);
    assert.equal(hpa.spec.maxReplicas, 5);
    // The proxy container's usage over its request, as the utilisation of Istio's single-container gateway pod.
    assert.deepEqual(hpa.spec.metrics, [
      { type: 'ContainerResource', containerResource: { name: 'cpu', container: 'istio-proxy', target: { type: 'Utilization', averageUtilization: 80 } } },
    ]);
    assert.equal(deploy.spec.replicas, undefined);
    assert.ok(proxy.resources?.requests?.cpu);
  });
});

describe('RBAC', () => {
  const objects = render(INGRESS);
  const clusterRole = only<Role>(objects, 'ClusterRole');
  const role = only<Role>(objects, 'Role');
  const sa = workload(objects).spec.template.spec.serviceAccountName;

  test("the ClusterRole reads the Istio kinds (the seven it implements, and the seven it marks Unsupported), the Gateway API kinds, services, pods and endpointslices, writes core events and patches the Istio kinds' status", () => {
    assert.deepEqual(
      ruleSet(clusterRole.rules),
      [
        'networking.istio.io/gateways: get,list,watch',
        'networking.istio.io/virtualservices: get,list,watch',
        'networking.istio.io/destinationrules: get,list,watch',
        'networking.istio.io/serviceentries: get,list,watch',
        'security.istio.io/authorizationpolicies: get,list,watch',
        'security.istio.io/requestauthentications: get,list,watch',
        'telemetry.istio.io/telemetries: get,list,watch',
        ...['envoyfilters', 'sidecars', 'workloadentries', 'workloadgroups', 'proxyconfigs'].map((r) => `networking.istio.io/${r}: get,list,watch`),
        ...['wasmplugins', 'trafficextensions'].map((r) => `extensions.istio.io/${r}: get,list,watch`),
        ...['gatewayclasses', 'gateways', 'httproutes', 'grpcroutes', 'referencegrants'].map((r) => `gateway.networking.k8s.io/${r}: get,list,watch`),
        'core/namespaces: get,list,watch',
        'core/services: get,list,watch',
        'core/pods: get,list,watch',
        'discovery.k8s.io/endpointslices: get,list,watch',
        'core/events: create,patch',
        'networking.istio.io/gateways/status: patch',
        'networking.istio.io/virtualservices/status: patch',
        'networking.istio.io/destinationrules/status: patch',
        'networking.istio.io/serviceentries/status: patch',
        'security.istio.io/authorizationpolicies/status: patch',
        'security.istio.io/requestauthentications/status: patch',
        'telemetry.istio.io/telemetries/status: patch',
        ...['envoyfilters', 'sidecars', 'workloadentries', 'workloadgroups', 'proxyconfigs'].map((r) => `networking.istio.io/${r}/status: patch`),
        ...['wasmplugins', 'trafficextensions'].map((r) => `extensions.istio.io/${r}/status: patch`),
      ].sort(),
    );
    for (const r of clusterRole.rules) {
      assert.equal(r.resourceNames, undefined);
      assert.ok(!r.verbs.includes('*') && !r.resources.includes('*') && !r.apiGroups.includes('*'));
    }
  });

  test('secrets are readable only in the release namespace, through a Role', () => {
    assert.equal(role.metadata.namespace, NAMESPACE);
    assert.deepEqual(ruleSet(role.rules), ['core/secrets: get,list,watch']);
    assert.ok(!clusterRole.rules.some((r) => r.resources.includes('secrets')));
  });

  test("the bindings grant the roles to the pods' service account", () => {
    const crb = only<RoleBinding>(objects, 'ClusterRoleBinding');
    const rb = only<RoleBinding>(objects, 'RoleBinding');
    assert.deepEqual(crb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole.metadata.name });
    assert.deepEqual(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    for (const b of [crb, rb]) assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: sa, namespace: NAMESPACE }]);
    assert.equal(only(objects, 'ServiceAccount').metadata.name, sa);
  });

  test('releases in two namespaces get distinct cluster-scoped names', () => {
    const other = render(INGRESS, { namespace: 'edge' });
    assert.equal(only(other, 'ClusterRole').metadata.name, `meshgate-edge-${INGRESS}`);
    assert.notEqual(only(other, 'ClusterRole').metadata.name, clusterRole.metadata.name);
  });

  test('rbac.enabled=false keeps every role and binding: the controller does not become ready without them', () => {
    const o = render(INGRESS, { set: { 'rbac.enabled': false } });
    assert.deepEqual(ruleSet(only<Role>(o, 'ClusterRole').rules), ruleSet(clusterRole.rules));
    assert.deepEqual(only<Role>(o, 'Role').rules, only<Role>(objects, 'Role').rules);
    for (const k of ['ClusterRoleBinding', 'RoleBinding']) assert.equal(ofKind(o, k).length, 1, k);
  });

  test('serviceAccount.create=false with a name uses that account in the pods and the bindings', () => {
    const o = render(INGRESS, { set: { 'serviceAccount.create': false, 'serviceAccount.name': 'edge-sa' } });
    assert.equal(ofKind(o, 'ServiceAccount').length, 0);
    assert.equal(workload(o).spec.template.spec.serviceAccountName, 'edge-sa');
    for (const b of [...ofKind<RoleBinding>(o, 'ClusterRoleBinding'), ...ofKind<RoleBinding>(o, 'RoleBinding')]) {
      assert.equal(b.subjects[0]?.name, 'edge-sa');
    }
  });
});

describe('egress gateway', () => {
  test('istio-egressgateway with values-egress.yaml: istio=egressgateway, ClusterIP, 80->8080 and 443->8443', () => {
    const o = render(EGRESS, { values: ['charts/gateway/values-egress.yaml'] });
    const svc = only<Service>(o, 'Service');
    const deploy = workload(o);
    assert.equal(deploy.metadata.labels?.istio, 'egressgateway');
    assert.deepEqual(deploy.spec.selector.matchLabels, { app: EGRESS, istio: 'egressgateway' });
    assert.deepEqual(svc.spec.selector, { app: EGRESS, istio: 'egressgateway' });
    assert.equal(svc.spec.type, 'ClusterIP');
    assert.deepEqual(
      svc.spec.ports.map((p) => [p.name, p.port, p.targetPort]),
      [
        ['http2', 80, 8080],
        ['https', 443, 8443],
      ],
    );
    // The readiness probe still has its port even though the Service no longer exposes it.
    const ports = portsOf(container(deploy, 'istio-proxy')).map((p) => p.containerPort);
    assert.deepEqual(ports, [8080, 8443, 15021, 15090]);
  });

  test('--set service.type=ClusterIP alone makes an egress gateway with the ingress ports', () => {
    const svc = only<Service>(render(EGRESS, { set: { 'service.type': 'ClusterIP' } }), 'Service');
    assert.equal(svc.metadata.labels?.istio, 'egressgateway');
    assert.equal(svc.spec.type, 'ClusterIP');
    assert.deepEqual(
      svc.spec.ports.map((p) => p.port),
      [15021, 80, 443],
    );
  });
});

describe('values', () => {
  test('name overrides the release name, and labels.app / labels.istio the selector labels', () => {
    const o = render('gw', { set: { name: 'istio-ingress', 'labels.app': 'edge', 'labels.istio': 'public', 'labels.team': 'net' } });
    const d = workload(o);
    assert.equal(d.metadata.name, 'istio-ingress');
    assert.deepEqual(d.spec.selector.matchLabels, { app: 'edge', istio: 'public' });
    assert.deepEqual(only<Service>(o, 'Service').spec.selector, { app: 'edge', istio: 'public' });
    for (const obj of o) assert.equal(obj.metadata.labels?.team, 'net', obj.kind);
    assert.equal(d.spec.template.metadata.labels.team, 'net');
  });

  test('the istio label of a name without the istio- prefix is the name itself', () => {
    assert.equal(workload(render('edge-gateway')).spec.selector.matchLabels.istio, 'edge-gateway');
  });

  test('Service options: externalTrafficPolicy, loadBalancerIP, loadBalancerSourceRanges, annotations', () => {
    const svc = only<Service>(
      render(INGRESS, {
        set: { 'service.externalTrafficPolicy': 'Local', 'service.loadBalancerIP': '203.0.113.10', 'annotations.owner': 'net' },
        setJson: {
          'service.loadBalancerSourceRanges': ['198.51.100.0/24'],
          'service.annotations': { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb' },
        },
      }),
      'Service',
    );
    assert.equal(svc.spec.externalTrafficPolicy, 'Local');
    assert.equal(svc.spec.loadBalancerIP, '203.0.113.10');
    assert.deepEqual(svc.spec.loadBalancerSourceRanges, ['198.51.100.0/24']);
    assert.deepEqual(svc.metadata.annotations, {
      'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb',
      owner: 'net',
    });
  });

  test('service.ports replaces the ports, and the proxy container ports follow the targetPorts', () => {
    const o = render(INGRESS, {
      setJson: {
        'service.ports': [
          { name: 'http2', port: 80, targetPort: 8080, protocol: 'TCP' },
          { name: 'tcp-db', port: 5432, targetPort: 15432, protocol: 'TCP' },
        ],
      },
    });
    assert.deepEqual(
      only<Service>(o, 'Service').spec.ports.map((p) => p.targetPort),
      [8080, 15432],
    );
    assert.deepEqual(portsOf(container(workload(o), 'istio-proxy')), [
      { name: 'http2', containerPort: 8080, protocol: 'TCP' },
      { name: 'tcp-db', containerPort: 15432, protocol: 'TCP' },
      { name: 'status-port', containerPort: 15021, protocol: 'TCP' },
      { name: 'http-envoy-prom', containerPort: 15090, protocol: 'TCP' },
    ]);
  });

  test('service.type=None renders no Service', () => {
    assert.equal(ofKind(render(INGRESS, { set: { 'service.type': 'None' } }), 'Service').length, 0);
  });

  test('externalTrafficPolicy on a ClusterIP Service fails with a clear message', () => {
    const err = templateError(GATEWAY_CHART, EGRESS, { set: { 'service.type': 'ClusterIP', 'service.externalTrafficPolicy': 'Local' } });
    assert.match(err, /service\.externalTrafficPolicy only applies to a Service of type LoadBalancer or NodePort/);
  });

  test('proxy.concurrency pins the worker count and drops ISTIO_CPU_LIMIT', () => {
    const proxy = container(workload(render(INGRESS, { set: { 'proxy.concurrency': 4 } })), 'istio-proxy');
    assert.ok(proxy.args?.includes('--concurrency=4'));
    assert.equal(env(proxy, 'ISTIO_CPU_LIMIT'), undefined);
  });

  test('controller.watchNamespaces becomes --watch-namespaces with a comma-separated list', () => {
    const c = container(workload(render(INGRESS, { setJson: { 'controller.watchNamespaces': ['default', 'shop'] } })), 'controller');
    assert.equal(c.args?.at(-1), '--watch-namespaces=default,shop');
  });

  test('proxy.drainDuration sets --drain-seconds, and must stay below terminationGracePeriodSeconds', () => {
    const proxy = container(workload(render(INGRESS, { set: { 'proxy.drainDuration': '45s', terminationGracePeriodSeconds: 60 } })), 'istio-proxy');
    assert.ok(proxy.args?.includes('--drain-seconds=45'));
    const err = templateError(GATEWAY_CHART, INGRESS, { set: { 'proxy.drainDuration': '45s' } });
    assert.match(err, /terminationGracePeriodSeconds \(30\) must be greater than proxy\.drainDuration \(45s\)/);
  });

  test('autoscaling.enabled=false renders no HPA and sets replicas from replicaCount', () => {
    const o = render(INGRESS, { set: { 'autoscaling.enabled': false, replicaCount: 3 } });
    assert.equal(ofKind(o, 'HorizontalPodAutoscaler').length, 0);
    assert.equal(workload(o).spec.replicas, 3);
  });

  test('podDisruptionBudget.minAvailable with minReplicas 2 renders a policy/v1 PodDisruptionBudget selecting the gateway pods', () => {
    const pdb = only<PodDisruptionBudget>(
      render(INGRESS, { set: { 'podDisruptionBudget.minAvailable': 1, 'autoscaling.minReplicas': 2 } }),
      'PodDisruptionBudget',
    );
    assert.equal(pdb.apiVersion, 'policy/v1');
    assert.deepEqual(pdb.spec, { selector: { matchLabels: { app: INGRESS, istio: 'ingressgateway' } }, minAvailable: 1 });
  });

  test('scheduling, pull and annotation values reach the pod spec', () => {
    const d = workload(
      render(INGRESS, {
        set: { priorityClassName: 'system-cluster-critical', 'podAnnotations.extra': 'yes' },
        setJson: {
          nodeSelector: { 'kubernetes.io/os': 'linux' },
          tolerations: [{ key: 'edge', operator: 'Exists', effect: 'NoSchedule' }],
          affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' }],
          imagePullSecrets: [{ name: 'registry' }],
        },
      }),
    );
    const pod = d.spec.template.spec;
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.deepEqual(pod.tolerations, [{ key: 'edge', operator: 'Exists', effect: 'NoSchedule' }]);
    assert.deepEqual(pod.affinity, { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } });
    assert.equal(pod.topologySpreadConstraints?.[0]?.topologyKey, 'topology.kubernetes.io/zone');
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'registry' }]);
    assert.equal(pod.priorityClassName, 'system-cluster-critical');
    assert.equal(d.spec.template.metadata.annotations?.extra, 'yes');
    assert.equal(d.spec.template.metadata.annotations?.['prometheus.io/port'], '15020');
  });

  test('env adds variables to the proxy, controller.env to the controller', () => {
    const d = workload(render(INGRESS, { set: { 'env.LOG_LEVEL': 'debug', 'controller.env.LOG_FORMAT': 'json' } }));
    assert.equal(env(container(d, 'istio-proxy'), 'LOG_LEVEL')?.value, 'debug');
    assert.equal(env(container(d, 'istio-proxy'), 'LOG_FORMAT'), undefined);
    assert.equal(env(container(d, 'controller'), 'LOG_FORMAT')?.value, 'json');
  });

  test("image.* sets the image of both containers; the tag defaults to the chart appVersion, which is package.json's version", () => {
    const d = workload(render(INGRESS, { set: { 'image.repository': 'registry.example/meshgate', 'image.tag': 'dev', 'image.pullPolicy': 'Always' } }));
    for (const c of d.spec.template.spec.containers) {
      assert.equal(c.image, 'registry.example/meshgate:dev');
      assert.equal(c.imagePullPolicy, 'Always');
    }
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    const chart = readFileSync(join(GATEWAY_CHART, 'Chart.yaml'), 'utf8');
    assert.match(chart, new RegExp(`^appVersion: "${pkg.version.replaceAll('.', '\\.')}"$`, 'm'));
  });

  test('kind=DaemonSet renders a DaemonSet and no HPA', () => {
    const o = render(INGRESS, { set: { kind: 'DaemonSet' } });
    assert.equal(ofKind(o, 'Deployment').length, 0);
    assert.equal(ofKind(o, 'HorizontalPodAutoscaler').length, 0);
    const ds = only<Workload>(o, 'DaemonSet');
    assert.equal(ds.spec.replicas, undefined);
    assert.equal(ds.spec.template.spec.containers.length, 2);
  });

  test('securityContext and containerSecurityContext replace the defaults', () => {
    const d = workload(
      render(INGRESS, {
        setJson: {
          securityContext: { runAsUser: 2000, runAsNonRoot: true },
          containerSecurityContext: { runAsUser: 2000, readOnlyRootFilesystem: true },
        },
      }),
    );
    assert.deepEqual(d.spec.template.spec.securityContext, { runAsUser: 2000, runAsNonRoot: true });
    for (const c of d.spec.template.spec.containers) {
      assert.deepEqual(c.securityContext, { runAsUser: 2000, readOnlyRootFilesystem: true });
    }
  });

  test('resources apply to the proxy, controller.resources to the controller', () => {
    const d = workload(render(INGRESS, { set: { 'resources.limits.cpu': '4000m', 'controller.resources.requests.memory': '256Mi' } }));
    assert.equal(container(d, 'istio-proxy').resources?.limits?.cpu, '4000m');
    assert.equal(container(d, 'controller').resources?.requests?.memory, '256Mi');
  });

  test("Istio chart's 80/443 target ports work with the unprivileged-port sysctl, still within the restricted standard", () => {
    const d = workload(
      render(INGRESS, {
        setJson: {
          'service.ports': [
            { name: 'http2', port: 80, targetPort: 80, protocol: 'TCP' },
            { name: 'https', port: 443, targetPort: 443, protocol: 'TCP' },
          ],
          securityContext: {
            runAsUser: 1337,
            runAsGroup: 1337,
            runAsNonRoot: true,
            seccompProfile: { type: 'RuntimeDefault' },
            sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
          },
        },
      }),
    );
    assert.deepEqual(
      portsOf(container(d, 'istio-proxy')).map((p) => p.containerPort),
      [80, 443, 15021, 15090],
    );
    assert.deepEqual(restrictedPodSecurityViolations(d.spec.template.spec), []);
  });

  test("a values file written for Istio's gateway chart renders unchanged", () => {
    const o = render(INGRESS, { values: ['charts/tests/testdata/istio-gateway-values.yaml'] });
    const svc = only<Service>(o, 'Service');
    assert.equal(svc.metadata.annotations?.['service.beta.kubernetes.io/aws-load-balancer-type'], 'nlb');
    assert.equal(svc.spec.externalTrafficPolicy, 'Local');
    assert.equal(only<HorizontalPodAutoscaler>(o, 'HorizontalPodAutoscaler').spec.maxReplicas, 10);
    assert.equal(only<PodDisruptionBudget>(o, 'PodDisruptionBudget').spec.minAvailable, 1);
  });
});

describe('values.schema.json', () => {
  const cases: { name: string; set: Record<string, string | number>; message: RegExp }[] = [
    { name: 'a misspelt top-level key', set: { 'servce.type': 'x' }, message: /at '': additional properties 'servce' not allowed/ },
    { name: 'a misspelt nested key', set: { 'service.prots': 'x' }, message: /at '\/service': additional properties 'prots' not allowed/ },
    { name: 'a misspelt Istio key', set: { revison: 'canary' }, message: /additional properties 'revison' not allowed/ },
    {
      name: 'a misspelt Service key of Istio',
      set: { 'service.selectorLabel.a': 'b' },
      message: /at '\/service': additional properties 'selectorLabel' not allowed/,
    },
    {
      name: 'a misspelt lifecycle hook',
      set: { 'lifecycle.preStart.exec.command[0]': 'x' },
      message: /at '\/lifecycle': additional properties 'preStart' not allowed/,
    },
    { name: 'a string replicaCount', set: { replicaCount: 'abc' }, message: /at '\/replicaCount': got string, want null or integer/ },
    { name: 'an unknown Service type', set: { 'service.type': 'Ingress' }, message: /at '\/service\/type'/ },
    { name: 'an unknown pull policy', set: { 'image.pullPolicy': 'Sometimes' }, message: /at '\/image\/pullPolicy'/ },
    { name: 'a drain duration in minutes', set: { 'proxy.drainDuration': '1m' }, message: /at '\/proxy\/drainDuration'/ },
    {
      name: 'a misspelt controller key',
      set: { 'controller.watchNamespace': 'default' },
      message: /at '\/controller': additional properties 'watchNamespace' not allowed/,
    },
    { name: 'a port out of range', set: { 'service.ports[0].port': 70000 }, message: /at '\/service\/ports\/0\/port'/ },
  ];
  for (const c of cases) {
    test(`rejects ${c.name}`, () => {
      const err = templateError(GATEWAY_CHART, INGRESS, { set: c.set });
      assert.match(err, /values don't meet the specifications of the schema/);
      assert.match(err, c.message);
    });
  }

  test('rejects minAvailable together with maxUnavailable', () => {
    const err = templateError(GATEWAY_CHART, INGRESS, {
      set: { 'podDisruptionBudget.minAvailable': 1, 'podDisruptionBudget.maxUnavailable': 1 },
    });
    assert.match(err, /at '\/podDisruptionBudget'/);
  });
});

describe('NOTES.txt', () => {
  function notes(release: string, o: RenderOptions = {}): string {
    // --dry-run=client renders NOTES without a cluster.
    const r = helm(['install', '--dry-run=client', ...renderArgs(GATEWAY_CHART, release, o)]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.slice(r.stdout.indexOf('NOTES:'));
  }

  test('tells LoadBalancer users how to find the external address and which curl to run', () => {
    const text = notes(INGRESS);
    assert.match(text, /selector:\n\s+istio: ingressgateway/);
    assert.ok(text.includes(`kubectl -n ${NAMESPACE} get service ${INGRESS} -o jsonpath='{.status.loadBalancer.ingress[0].ip}'`));
    assert.ok(text.includes('curl -i -H "Host: httpbin.example.com" "http://$INGRESS_HOST:80/status/200"'));
    assert.ok(text.includes('listener 0.0.0.0_8080'));
  });

  test('tells ClusterIP (egress) users the in-cluster address', () => {
    const text = notes(EGRESS, { values: ['charts/gateway/values-egress.yaml'] });
    assert.match(text, /istio: egressgateway/);
    assert.ok(text.includes(`${EGRESS}.${NAMESPACE}.svc.cluster.local`));
    assert.ok(!text.includes('loadBalancer.ingress'));
  });
});
