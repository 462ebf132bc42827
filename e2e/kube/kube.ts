// What the tests do to the cluster, as an admin would with kubectl: server-side apply, delete, status patches,
// and the objects a kubelet and the EndpointSlice controller would write for a backend "pod".
import { KubeClient, KubeApiError, loadKubeConfig, type KubeList } from '../../controller/sources/kube/client.ts';
import type { KubeObject } from '../../controller/model/objects.ts';
import { createHash } from 'node:crypto';
import { eventually } from '../lib/process.ts';

// On an external cluster (E2E_KUBECONFIG) the cluster's own EndpointSlice controller must not mistake our
// slices for its own.
const SLICE_MANAGER = process.env.E2E_KUBECONFIG ? 'meshgate-e2e' : 'endpointslice-controller.k8s.io';

const PATHS: Record<string, { prefix: string; plural: string; namespaced?: false }> = {
  Namespace: { prefix: '/api/v1', plural: 'namespaces', namespaced: false },
  Service: { prefix: '/api/v1', plural: 'services' },
  Pod: { prefix: '/api/v1', plural: 'pods' },
  Secret: { prefix: '/api/v1', plural: 'secrets' },
  ConfigMap: { prefix: '/api/v1', plural: 'configmaps' },
  Event: { prefix: '/api/v1', plural: 'events' },
  ServiceAccount: { prefix: '/api/v1', plural: 'serviceaccounts' },
  Deployment: { prefix: '/apis/apps/v1', plural: 'deployments' },
  HorizontalPodAutoscaler: { prefix: '/apis/autoscaling/v2', plural: 'horizontalpodautoscalers' },
  ClusterRole: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'clusterrolebindings', namespaced: false },
  Role: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'roles' },
  RoleBinding: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'rolebindings' },
  EndpointSlice: { prefix: '/apis/discovery.k8s.io/v1', plural: 'endpointslices' },
  Gateway: { prefix: '/apis/networking.istio.io/v1', plural: 'gateways' },
  VirtualService: { prefix: '/apis/networking.istio.io/v1', plural: 'virtualservices' },
  DestinationRule: { prefix: '/apis/networking.istio.io/v1', plural: 'destinationrules' },
  ServiceEntry: { prefix: '/apis/networking.istio.io/v1', plural: 'serviceentries' },
  AuthorizationPolicy: { prefix: '/apis/security.istio.io/v1', plural: 'authorizationpolicies' },
  RequestAuthentication: { prefix: '/apis/security.istio.io/v1', plural: 'requestauthentications' },
  Telemetry: { prefix: '/apis/telemetry.istio.io/v1', plural: 'telemetries' },
};

export class Kube {
  readonly client: KubeClient;
  constructor(kubeconfig: string) {
    this.client = new KubeClient(loadKubeConfig(kubeconfig));
  }

  private path(kind: string, namespace: string | undefined, name?: string): string {
    const p = PATHS[kind];
    if (!p) throw new Error(`e2e kube: unknown kind ${kind}`);
    const ns = p.namespaced === false || !namespace ? '' : `/namespaces/${namespace}`;
    return `${p.prefix}${ns}/${p.plural}${name ? `/${name}` : ''}`;
  }

  /** Server-side apply (kubectl apply --server-side --force-conflicts): creates or updates. */
  async apply(obj: KubeObject): Promise<KubeObject> {
    return this.client.json<KubeObject>('PATCH', this.path(obj.kind, obj.metadata.namespace, obj.metadata.name), {
      query: { fieldManager: 'meshgate-e2e', force: true },
      body: obj,
      contentType: 'application/apply-patch+yaml',
    });
  }

  /** POST (kubectl create): the API server validates the object as sent. */
  async create(obj: KubeObject): Promise<KubeObject> {
    return this.client.json<KubeObject>('POST', this.path(obj.kind, obj.metadata.namespace), { body: obj });
  }

  async get(kind: string, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    try {
      return await this.client.json<KubeObject>('GET', this.path(kind, namespace, name));
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async list(kind: string, namespace: string | undefined, query: Record<string, string> = {}): Promise<KubeObject[]> {
    return (await this.client.json<KubeList>('GET', this.path(kind, namespace), { query })).items;
  }

  async remove(kind: string, namespace: string | undefined, name: string): Promise<void> {
    try {
      await this.client.json('DELETE', this.path(kind, namespace, name), { body: { propagationPolicy: 'Background' } });
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 404)) throw err;
    }
  }

  async mergePatch(kind: string, namespace: string, name: string, patch: unknown, subresource?: 'status'): Promise<KubeObject> {
    return this.client.json<KubeObject>('PATCH', this.path(kind, namespace, name) + (subresource ? `/${subresource}` : ''), {
      body: patch,
      contentType: 'application/merge-patch+json',
    });
  }

  /** Waits until the API server serves the four networking.istio.io kinds in v1. */
  async waitForIstioCrds(timeoutMs = 60_000): Promise<void> {
    await eventually(
      'networking.istio.io/v1 to serve gateways, virtualservices, destinationrules and serviceentries',
      async () => {
        const list = await this.client.json<{ resources: { name: string }[] }>('GET', '/apis/networking.istio.io/v1');
        const names = new Set(list.resources.map((r) => r.name));
        return ['gateways', 'virtualservices', 'destinationrules', 'serviceentries'].every((n) => names.has(n)) || undefined;
      },
      timeoutMs,
      250,
    );
    // Established CRDs can still answer 404 on their first list for a moment.
    await eventually('the Gateway collection to be listable', async () => ((await this.list('Gateway', undefined)) ? true : undefined), timeoutMs, 250);
  }

  async ensureNamespace(name: string): Promise<void> {
    await this.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }

  /** Warning Events recorded on an object. */
  async eventsFor(kind: string, namespace: string, name: string): Promise<KubeObject[]> {
    return this.list('Event', namespace, { fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}` });
  }
}

export interface BackendPod {
  name: string;
  namespace: string;
  ip: string;
  labels: Record<string, string>;
}

/**
 * A backend pod as the API server would hold it with a kubelet: the Pod, then its status (podIP, Running,
 * Ready) written through the status subresource. schedulerName names no scheduler, so on a real cluster
 * (E2E_KUBECONFIG) nothing schedules it and no kubelet overwrites the status.
 */
export async function createPod(kube: Kube, p: BackendPod): Promise<KubeObject> {
  await kube.apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name, namespace: p.namespace, labels: p.labels },
    spec: {
      schedulerName: 'meshgate-e2e-no-scheduler',
      containers: [{ name: 'httpbin', image: 'meshgate/httpbin:e2e', ports: [{ containerPort: 8000, name: 'http' }] }],
    },
  });
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return kube.mergePatch(
    'Pod',
    p.namespace,
    p.name,
    {
      status: {
        phase: 'Running',
        podIP: p.ip,
        podIPs: [{ ip: p.ip }],
        conditions: [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
          { type: 'Initialized', status: 'True', lastTransitionTime: now },
          { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
          { type: 'Ready', status: 'True', lastTransitionTime: now },
        ],
      },
    },
    'status',
  );
}

export interface ServicePort {
  name: string;
  port: number;
  targetPort: number;
}

/** A ClusterIP Service; with `selector: false` (external clusters) the cluster's EndpointSlice controller leaves it alone. */
export async function createService(
  kube: Kube,
  o: { name: string; namespace: string; ports: ServicePort[]; selector?: Record<string, string> | false; labels?: Record<string, string> },
): Promise<KubeObject> {
  return kube.apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: o.name, namespace: o.namespace, labels: o.labels ?? { app: o.name } },
    spec: {
      ...(o.selector === false ? {} : { selector: o.selector ?? { app: o.name } }),
      ports: o.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort, protocol: 'TCP' })),
    },
  });
}

/**
 * The EndpointSlice the EndpointSlice controller would write for `service` and its ready `pods`: named
 * `<service>-<suffix>`, labelled with the service name and the controller as manager, owned by the Service,
 * one endpoint per pod with its targetRef.
 */
export async function writeEndpointSlice(kube: Kube, service: KubeObject, pods: BackendPod[], ports: ServicePort[]): Promise<KubeObject> {
  const ns = service.metadata.namespace ?? 'default';
  const uids = await Promise.all(pods.map(async (p) => (await kube.get('Pod', p.namespace, p.name))?.metadata.uid));
  return kube.apply({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      // The controller's generateName gives `<service>-<5 random characters>`; a stable suffix lets us rewrite it.
      name: `${service.metadata.name}-${createHash('sha256').update(service.metadata.name).digest('hex').slice(0, 5)}`,
      namespace: ns,
      labels: { 'kubernetes.io/service-name': service.metadata.name, 'endpointslice.kubernetes.io/managed-by': SLICE_MANAGER },
      ownerReferences: [
        { apiVersion: 'v1', kind: 'Service', name: service.metadata.name, uid: service.metadata.uid, controller: true, blockOwnerDeletion: true },
      ],
    } as KubeObject['metadata'],
    addressType: 'IPv4',
    ports: ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: 'TCP' })),
    endpoints: pods.map((p, i) => ({
      addresses: [p.ip],
      conditions: { ready: true, serving: true, terminating: false },
      targetRef: { kind: 'Pod', namespace: p.namespace, name: p.name, ...(uids[i] ? { uid: uids[i] } : {}) },
    })),
  });
}
