// Shared setup of the Kubernetes e2e files: the cluster (local or E2E_KUBECONFIG), the project's CRDs
// installed with its own chart, the namespaces, the pod network, and the objects of Istio's ingress task.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '../../controller/model/objects.ts';
import { parseAllDocuments } from 'yaml';
import { REPO } from '../lib/process.ts';
import { exec, helmTools, startCluster, type Cluster } from './cluster.ts';
import { createPod, createService, Kube, writeEndpointSlice, type BackendPod, type ServicePort } from './kube.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';

export const HOST = 'httpbin.example.com';
export const GATEWAY_LABELS = { app: 'istio-ingressgateway', istio: 'ingressgateway' };

export interface Suite {
  cluster: Cluster;
  kube: Kube;
  net: PodNetwork;
  external: boolean;
  /** Namespaces: the gateway's, the httpbin app's, and a second team's. */
  ns: { gw: string; app: string; team: string };
  dir: string;
  /** The port the Gateway's port 80 maps to (the gateway Service's targetPort): the listener 0.0.0.0_<port>. */
  listenPort: number;
  /**
   * The kubeconfig the controller runs with: on the local cluster the ServiceAccount of the gateway chart,
   * with exactly the chart's RBAC (so every scenario proves that RBAC suffices); on an external cluster the
   * admin kubeconfig given.
   */
  controllerKubeconfig: string;
  /** Namespaces to pass to --watch-namespaces (only on external clusters, where others' Gateways exist). */
  watchNamespaces: string[] | undefined;
  /** A backend pod: Pod object with Ready status, and its httpbin process on a pod address. */
  backend(name: string, namespace: string, labels: Record<string, string>): Promise<BackendPod>;
  /** Service + EndpointSlice for pods (port 8000). */
  service(name: string, namespace: string, pods: BackendPod[], selector: Record<string, string>): Promise<KubeObject>;
  cleanup(): Promise<void>;
}

export async function setupSuite(o: { listenPort: number }): Promise<Suite> {
  const cluster = await startCluster();
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-kube-suite-'));
  const external = cluster.external;
  // On a shared cluster, the suite's namespaces are its own; locally the names of Istio's tasks.
  const id = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const ns = external ? { gw: `mge2e-${id}-system`, app: `mge2e-${id}-app`, team: `mge2e-${id}-team` } : { gw: 'istio-system', app: 'default', team: 'team-b' };
  const kube = new Kube(cluster.kubeconfig);
  let net: PodNetwork | undefined;
  const cleanup = async (): Promise<void> => {
    await net?.destroy();
    if (external) for (const n of Object.values(ns)) await kube.remove('Namespace', undefined, n).catch(() => undefined);
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await installCrds(cluster, kube, ns.gw);
    for (const n of Object.values(ns)) await kube.ensureNamespace(n);
    net = createPodNetwork();
    const pn = net;
    const ports: ServicePort[] = [{ name: 'http', port: 8000, targetPort: 8000 }];

    // The gateway's own Service (as the legacy istioctl install: 80 -> the listen port) and its Pod object,
    // whose registry labels the controller uses.
    await createService(kube, {
      name: 'istio-ingressgateway',
      namespace: ns.gw,
      labels: GATEWAY_LABELS,
      // Always with its selector: the controller finds its Service by selector ⊆ its pod labels, as istiod.
      selector: { istio: 'ingressgateway' },
      ports: [
        { name: 'status-port', port: 15021, targetPort: 15021 },
        { name: 'http2', port: 80, targetPort: o.listenPort },
        { name: 'https', port: 443, targetPort: o.listenPort + 363 }, // 8080 -> 8443, as Istio's install
      ],
    });
    await createPod(kube, { name: 'istio-ingressgateway-e2e', namespace: ns.gw, ip: '127.0.0.1', labels: GATEWAY_LABELS });
    const controllerKubeconfig = external ? cluster.kubeconfig : await chartServiceAccount(cluster, kube, ns.gw);

    return {
      cluster,
      kube,
      net: pn,
      external,
      ns,
      dir,
      listenPort: o.listenPort,
      controllerKubeconfig,
      watchNamespaces: external ? Object.values(ns) : undefined,
      async backend(name, namespace, labels) {
        const ip = pn.allocate();
        await pn.httpbin(ip, name);
        const pod = { name, namespace, ip, labels };
        await createPod(kube, pod);
        return pod;
      },
      async service(name, namespace, pods, selector) {
        const svc = await createService(kube, { name, namespace, ports, selector: external ? false : selector });
        await writeEndpointSlice(kube, svc, pods, ports);
        return svc;
      },
      cleanup,
    };
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }
}

/**
 * The project's CRDs from charts/base, installed with helm as docs/install.md says. On an external cluster
 * that already serves networking.istio.io (Istio's own CRDs), those are used as they are.
 */
async function installCrds(cluster: Cluster, kube: Kube, namespace: string): Promise<void> {
  if (cluster.external) {
    const served = await kube.client.json<{ resources: { name: string }[] }>('GET', '/apis/networking.istio.io/v1').catch(() => undefined);
    if (served?.resources.some((r) => r.name === 'gateways')) return;
  }
  const { helm } = await helmTools();
  const helmHome = join(cluster.dir, 'helm');
  await exec(
    helm,
    ['upgrade', '--install', 'istio-base', join(REPO, 'charts/base'), '--namespace', namespace, '--create-namespace', '--kubeconfig', cluster.kubeconfig],
    { HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data') },
    180_000,
  );
  await kube.waitForIstioCrds();
}

/**
 * The RBAC of charts/gateway (ServiceAccount, ClusterRole, Role and their bindings), rendered by helm for a
 * release `istio-ingressgateway` in `namespace` and applied; returns a kubeconfig with that ServiceAccount's
 * token.
 */
async function chartServiceAccount(cluster: Cluster, kube: Kube, namespace: string): Promise<string> {
  const { helm } = await helmTools();
  const helmHome = join(cluster.dir, 'helm');
  const rendered = await exec(
    helm,
    ['template', 'istio-ingressgateway', join(REPO, 'charts/gateway'), '--namespace', namespace],
    { HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data') },
  );
  const rbac = parseAllDocuments(rendered)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => !!o && ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind));
  const sa = rbac.find((o) => o.kind === 'ServiceAccount');
  if (!sa || !rbac.some((o) => o.kind === 'ClusterRole')) throw new Error(`helm template charts/gateway rendered no ServiceAccount or ClusterRole:\n${rendered.slice(0, 2000)}`);
  for (const o of rbac) await kube.apply(o);
  const file = await cluster.serviceAccountKubeconfig(sa.metadata.namespace ?? namespace, sa.metadata.name);
  if (!file) throw new Error('no ServiceAccount kubeconfig on this cluster');
  return file;
}

export const gateway = (name: string, namespace: string, selector: Record<string, string>, hosts: string[]): KubeObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace },
  spec: { selector, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts }] },
});

export const virtualService = (name: string, namespace: string, o: { hosts: string[]; gateways: string[]; prefixes: string[]; host: string; subset?: string }): KubeObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace },
  spec: {
    hosts: o.hosts,
    gateways: o.gateways,
    http: [
      {
        match: o.prefixes.map((prefix) => ({ uri: { prefix } })),
        route: [{ destination: { host: o.host, port: { number: 8000 }, ...(o.subset ? { subset: o.subset } : {}) } }],
      },
    ],
  },
});
