// A cluster for the tests that install the gateway chart themselves (upgrades from Istio's chart, installs by a
// restricted deployer), instead of the suite's fixed releases: the local API server with the project's CRDs, a pod
// network, helm, and Istio's ingress task objects (an httpbin pod, its Service, a Gateway and a VirtualService).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../controller/model/objects.ts';
import { get } from '../lib/http.ts';
import { REPO, eventually } from '../lib/process.ts';
import { exec, helmTools, startCluster, type Cluster } from './cluster.ts';
import { startGatewayPod, waitReady, type GatewayPod } from './gateway-pod.ts';
import { createPod, createService, Kube, writeEndpointSlice } from './kube.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';
import { HOST, gateway, helmEnv, installCrds, virtualService } from './suite.ts';

export const GATEWAY_CHART = join(REPO, 'charts/gateway');

/** Why these tests need the local cluster: they mint ServiceAccount tokens and own the whole API server. */
export const LOCAL_ONLY = process.env.E2E_KUBECONFIG
  ? 'E2E_KUBECONFIG is set: these tests create ServiceAccount tokens and cluster-wide objects, which only the local API server of e2e/kube/cluster.sh allows'
  : false;

export interface ChartCluster {
  cluster: Cluster;
  kube: Kube;
  net: PodNetwork;
  dir: string;
  /** The pod address the gateway pods get. */
  podIP: string;
  /** `helm ARGS --kubeconfig KUBECONFIG` (the admin's by default); returns helm's output, throws with it. */
  helm(args: string[], kubeconfig?: string): Promise<string>;
  /** `helm get manifest RELEASE -n NAMESPACE`, parsed. */
  manifest(release: string, namespace: string): Promise<KubeObject[]>;
  /** An httpbin pod with its Service `httpbin` (port 8000) in `namespace`, a Gateway selecting `selector` for HOST, and a VirtualService. */
  httpbinRoute(namespace: string, selector: Record<string, string>): Promise<void>;
  /** The pod a ReplicaSet of the Deployment would create, both containers started as a kubelet would, ready. */
  startGateway(deployment: string, namespace: string, kubeconfig: string): Promise<GatewayPod>;
  /** Waits for `port` on the gateway pod to answer `status` for HOST `path`. */
  waitStatus(port: number, path: string, status: number, host?: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** Istio's own gateway chart from the Go module cache (scripts/fetch-istio-chart.sh; fetched before netns.sh by run.sh). */
export function istioGatewayChart(): string {
  const out = execFileSync('bash', [join(REPO, 'scripts/fetch-istio-chart.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
  const dir = out.trim().split('\n').at(-1);
  if (!dir) throw new Error('scripts/fetch-istio-chart.sh printed no directory');
  return dir;
}

export async function startChartCluster(namespaces: string[]): Promise<ChartCluster> {
  const cluster = await startCluster();
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-kube-chart-'));
  const kube = new Kube(cluster.kubeconfig);
  const net = createPodNetwork();
  const cleanup = async (): Promise<void> => {
    await net.destroy();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await installCrds(cluster, kube, 'istio-system');
    for (const n of namespaces) await kube.ensureNamespace(n);
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }
  const { helm } = await helmTools();
  const podIP = process.env.MESHGATE_E2E_NETNS === '1' ? net.allocate() : '127.0.0.1';
  const run = (args: string[], kubeconfig = cluster.kubeconfig): Promise<string> =>
    exec(helm, [...args, '--kubeconfig', kubeconfig], helmEnv(cluster), 180_000);
  return {
    cluster,
    kube,
    net,
    dir,
    podIP,
    helm: run,
    async manifest(release, namespace) {
      return parseAllDocuments(await run(['get', 'manifest', release, '--namespace', namespace]))
        .map((d) => d.toJS() as KubeObject | null)
        .filter((o): o is KubeObject => !!o);
    },
    async httpbinRoute(namespace, selector) {
      const ip = net.allocate();
      await net.httpbin(ip, `httpbin-${namespace}`);
      const pod = { name: 'httpbin-v1', namespace, ip, labels: { app: 'httpbin', version: 'v1' } };
      await createPod(kube, pod);
      const ports = [{ name: 'http', port: 8000, targetPort: 8000 }];
      const svc = await createService(kube, { name: 'httpbin', namespace, ports, selector: { app: 'httpbin' } });
      await writeEndpointSlice(kube, svc, [pod], ports);
      await kube.apply(gateway('httpbin-gateway', namespace, selector, [HOST]));
      await kube.apply(
        virtualService('httpbin', namespace, { hosts: [HOST], gateways: ['httpbin-gateway'], prefixes: ['/status', '/headers'], host: 'httpbin' }),
      );
    },
    async startGateway(deployment, namespace, kubeconfig) {
      const gw = await startGatewayPod({ kube, deployment, namespace, podIP, kubeconfig, dir });
      await waitReady(gw, 60_000);
      return gw;
    },
    async waitStatus(port, path, status, host = HOST) {
      await eventually(
        `${host}${path} on port ${port} to answer ${status}`,
        async () => ((await get('127.0.0.1', port, path, host).catch(() => undefined))?.status === status ? true : undefined),
        30_000,
        200,
      );
    },
    cleanup,
  };
}
