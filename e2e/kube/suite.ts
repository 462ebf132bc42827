// Shared setup of the Kubernetes e2e files: the cluster (local or E2E_KUBECONFIG), the project's CRDs
// installed with its own chart, the namespaces, the pod network, and the objects of Istio's ingress task.
import type { Collector } from '../lib/otelcol.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '../../controller/model/objects.ts';
import { parseAllDocuments } from 'yaml';
import { REPO } from '../lib/process.ts';
import { exec, helmTools, startCluster, type Cluster } from './cluster.ts';
import { createPod, createService, Kube, writeEndpointSlice, type BackendPod, type ServicePort } from './kube.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';
import { startGatewayPod, waitReady, type GatewayPod } from './gateway-pod.ts';

export const HOST = 'httpbin.example.com';

export interface Suite {
  cluster: Cluster;
  kube: Kube;
  net: PodNetwork;
  external: boolean;
  /** Namespaces: the gateway's, the httpbin app's, and a second team's. */
  ns: { gw: string; app: string; team: string };
  dir: string;
  /** The port the Gateway's port 80 maps to (the chart's Service targetPort 8080): the listener 0.0.0.0_<port>. */
  listenPort: number;
  /**
   * The kubeconfig the controller runs with: on the local cluster the ServiceAccount of the gateway chart,
   * with exactly the chart's RBAC (so every scenario proves that RBAC suffices); on an external cluster the
   * admin kubeconfig given.
   */
  controllerKubeconfig: string;
  /** The ingress gateway pod's address (status.podIP): a pod-network address inside e2e/kube/netns.sh. */
  gatewayPodIP: string;
  /** A backend pod: Pod object with Ready status, and its httpbin process on a pod address. */
  backend(name: string, namespace: string, labels: Record<string, string>): Promise<BackendPod>;
  /** Service + EndpointSlice for pods (port 8000, named http; or the ports given). */
  service(name: string, namespace: string, pods: BackendPod[], selector: Record<string, string>, ports?: ServicePort[]): Promise<KubeObject>;
  /** A gRPC backend pod: the gRPC echo server (e2e/lib/grpc-echo.ts) on a pod address, port `port`. */
  grpcBackend(name: string, namespace: string, labels: Record<string, string>, port: number): Promise<BackendPod>;
  /** Istio's sample external authorizer (e2e/lib/ext-authz-sample.ts) on a pod address: HTTP on `httpPort`, gRPC on `grpcPort`. */
  extAuthz(name: string, namespace: string, labels: Record<string, string>, httpPort: number, grpcPort: number): Promise<BackendPod>;
  /** A pod running a real OpenTelemetry Collector (OTLP and Zipkin receivers); its ports are the collector's. */
  collector(name: string, namespace: string, labels: Record<string, string>): Promise<{ pod: BackendPod; collector: Collector }>;
  cleanup(): Promise<void>;
}

export async function setupSuite(): Promise<Suite> {
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

    // Both gateway releases, installed as docs/install.md says. No --wait: without a kubelet a Deployment
    // never gets ready pods; startGatewayPod plays the ReplicaSet and the kubelet for the ingress gateway.
    // On a shared cluster the suite's namespaces are passed as controller.watchNamespaces, so that the
    // rendered args carry --watch-namespaces and Gateways already in the cluster do not bind.
    await helmInstallGateways(cluster, ns.gw, external ? Object.values(ns) : undefined);
    const controllerKubeconfig = external ? cluster.kubeconfig : await chartServiceAccount(cluster, kube, ns.gw);
    const podIP = process.env.MESHGATE_E2E_NETNS === '1' ? pn.allocate() : '127.0.0.1';

    return {
      cluster,
      kube,
      net: pn,
      external,
      ns,
      dir,
      listenPort: 8080,
      controllerKubeconfig,
      gatewayPodIP: podIP,
      async backend(name, namespace, labels) {
        const ip = pn.allocate();
        await pn.httpbin(ip, name);
        const pod = { name, namespace, ip, labels };
        await createPod(kube, pod);
        return pod;
      },
      async service(name, namespace, pods, selector, servicePorts = ports) {
        const svc = await createService(kube, { name, namespace, ports: servicePorts, selector: external ? false : selector });
        await writeEndpointSlice(kube, svc, pods, servicePorts);
        return svc;
      },
      async grpcBackend(name, namespace, labels, port) {
        const ip = pn.allocate();
        await pn.grpcEcho(ip, port);
        const pod = { name, namespace, ip, labels };
        await createPod(kube, pod);
        return pod;
      },
      async collector(name, namespace, labels) {
        const ip = pn.allocate();
        const collector = await pn.collector(ip);
        const pod = { name, namespace, ip, labels };
        await createPod(kube, pod);
        return { pod, collector };
      },
      async extAuthz(name, namespace, labels, httpPort, grpcPort) {
        const ip = pn.allocate();
        await pn.extAuthz(ip, httpPort, grpcPort);
        const pod = { name, namespace, ip, labels };
        await createPod(kube, pod);
        return pod;
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
export async function installCrds(cluster: Cluster, kube: Kube, namespace: string): Promise<void> {
  if (cluster.external) {
    const served = await kube.client.json<{ resources: { name: string }[] }>('GET', '/apis/networking.istio.io/v1').catch(() => undefined);
    if (served?.resources.some((r) => r.name === 'gateways')) return;
  }
  const { helm } = await helmTools();
  await exec(
    helm,
    ['upgrade', '--install', 'istio-base', join(REPO, 'charts/base'), '--namespace', namespace, '--create-namespace', '--kubeconfig', cluster.kubeconfig],
    helmEnv(cluster),
    180_000,
  );
  await kube.waitForIstioCrds();
}

export const helmEnv = (cluster: Cluster): NodeJS.ProcessEnv => {
  const home = join(cluster.dir, 'helm');
  return { HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
};

/** The releases the suite installs from charts/gateway, as docs/install.md installs them. */
export const RELEASES = {
  ingress: { name: 'istio-ingressgateway', values: [] as string[] },
  egress: { name: 'istio-egressgateway', values: ['charts/gateway/values-egress.yaml'] },
};

/**
 * `helm install istio-ingressgateway charts/gateway` and `helm install istio-egressgateway charts/gateway -f
 * charts/gateway/values-egress.yaml` into the gateway namespace (no --wait: no kubelet).
 */
async function helmInstallGateways(cluster: Cluster, namespace: string, watchNamespaces: string[] | undefined): Promise<void> {
  const { helm } = await helmTools();
  for (const r of Object.values(RELEASES)) {
    await exec(
      helm,
      [
        'install',
        r.name,
        join(REPO, 'charts/gateway'),
        '--namespace',
        namespace,
        '--kubeconfig',
        cluster.kubeconfig,
        ...r.values.flatMap((v) => ['-f', join(REPO, v)]),
        ...(watchNamespaces ? ['--set', `controller.watchNamespaces={${watchNamespaces.join(',')}}`] : []),
      ],
      helmEnv(cluster),
      180_000,
    );
  }
}

/** The ingress gateway pod of the chart's release (proxy and controller), started and ready to serve. */
export async function startIngressPod(s: Suite): Promise<GatewayPod> {
  const gw = await startGatewayPod({
    kube: s.kube,
    deployment: RELEASES.ingress.name,
    namespace: s.ns.gw,
    podIP: s.gatewayPodIP,
    kubeconfig: s.controllerKubeconfig,
    dir: s.dir,
  });
  await waitReady(gw, 30_000);
  return gw;
}

/** `helm get manifest RELEASE`: what helm rendered and applied. */
export async function releaseManifest(s: Pick<Suite, 'cluster' | 'ns'>, release: string): Promise<KubeObject[]> {
  const { helm } = await helmTools();
  const text = await exec(helm, ['get', 'manifest', release, '--namespace', s.ns.gw, '--kubeconfig', s.cluster.kubeconfig], helmEnv(s.cluster));
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => !!o);
}

/**
 * A kubeconfig with a token of the ServiceAccount the installed ingress gateway Deployment runs as (created by
 * its release, with the release's RBAC), obtained with the TokenRequest API as the kubelet gets the projected
 * token of the pod's kube-api-access volume.
 */
async function chartServiceAccount(cluster: Cluster, kube: Kube, namespace: string): Promise<string> {
  const dep = (await kube.get('Deployment', namespace, RELEASES.ingress.name)) as
    (KubeObject & { spec: { template: { spec: { serviceAccountName?: string } } } }) | undefined;
  const sa = dep?.spec.template.spec.serviceAccountName;
  if (!sa) throw new Error(`the Deployment ${namespace}/${RELEASES.ingress.name} names no serviceAccountName`);
  const file = await cluster.serviceAccountKubeconfig(namespace, sa);
  if (!file) throw new Error('no ServiceAccount kubeconfig on this cluster');
  return file;
}

export const gateway = (name: string, namespace: string, selector: Record<string, string>, hosts: string[]): KubeObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace },
  spec: { selector, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts }] },
});

export const virtualService = (
  name: string,
  namespace: string,
  o: { hosts: string[]; gateways: string[]; prefixes: string[]; host: string; subset?: string },
): KubeObject => ({
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
