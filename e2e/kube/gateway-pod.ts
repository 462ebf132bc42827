// The gateway pod without a kubelet: its two containers, `meshgate proxy` and the `meshgate controller`
// sidecar, as real processes on this machine, wired as the chart wires them (localhost xDS, Downward API
// labels file and POD_* env). Every process start of the suite goes through startGatewayPod, so the chart's
// exact command, args and env can be substituted in one place.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, meshgate, type Proc } from '../lib/process.ts';
import { rawRequest } from '../lib/http.ts';

export interface GatewayPodOptions {
  /** The kubeconfig the controller uses (the chart ServiceAccount on the local cluster). */
  kubeconfig: string;
  podName: string;
  namespace: string;
  labels: Record<string, string>;
  /** Where the Downward API labels file is written. */
  dir: string;
  watchNamespaces?: string[];
  /** Start only the proxy (the controller later, with startController()). */
  proxyOnly?: boolean;
}

export interface GatewayPod {
  proxy: Proc;
  controller: Proc | undefined;
  ports: { xds: number; admin: number; status: number; metrics: number; merged: number };
  startController(): Proc;
  /** Rewrites the Downward API labels file, as the kubelet does on relabel. */
  writeLabels(labels: Record<string, string>): void;
  adminGet(path: string): Promise<string>;
  /** GET on the status port :15021 (/healthz/ready). */
  ready(): Promise<number>;
  /** The controller's merged /stats/prometheus (proxy + controller metrics). */
  mergedMetrics(): Promise<string>;
  stop(): Promise<void>;
}

export async function startGatewayPod(o: GatewayPodOptions): Promise<GatewayPod> {
  const ports = { xds: await freePort(), admin: await freePort(), status: await freePort(), metrics: await freePort(), merged: await freePort() };
  const labelsFile = join(o.dir, `${o.podName}.labels`);
  const writeLabels = (labels: Record<string, string>): void => {
    const text = Object.entries(labels)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join('\n');
    writeFileSync(`${labelsFile}.tmp`, text);
    renameSync(`${labelsFile}.tmp`, labelsFile);
  };
  writeLabels(o.labels);
  const env = { POD_NAME: o.podName, POD_NAMESPACE: o.namespace, INSTANCE_IP: '127.0.0.1' };

  const proxy = meshgate(
    ['proxy', `--xds-address=127.0.0.1:${ports.xds}`, `--admin-port=${ports.admin}`, `--status-port=${ports.status}`, `--metrics-port=${ports.metrics}`, '--drain-seconds=0'],
    env,
  );
  const pod: GatewayPod = {
    proxy,
    controller: undefined,
    ports,
    writeLabels,
    startController() {
      if (pod.controller) throw new Error('the controller is already running');
      pod.controller = meshgate(
        [
          'controller',
          `--kubeconfig=${o.kubeconfig}`,
          `--xds-address=127.0.0.1:${ports.xds}`,
          `--merged-metrics-port=${ports.merged}`,
          `--proxy-metrics-url=http://127.0.0.1:${ports.metrics}/stats/prometheus`,
          `--labels-file=${labelsFile}`,
          ...(o.watchNamespaces?.length ? [`--watch-namespaces=${o.watchNamespaces.join(',')}`] : []),
        ],
        env,
      );
      return pod.controller;
    },
    async adminGet(path) {
      return (await rawRequest('127.0.0.1', ports.admin, `GET ${path} HTTP/1.1\r\nHost: admin\r\n\r\n`)).body.toString();
    },
    async ready() {
      return (await rawRequest('127.0.0.1', ports.status, 'GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\n')).status;
    },
    async mergedMetrics() {
      return (await rawRequest('127.0.0.1', ports.merged, 'GET /stats/prometheus HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 10_000 })).body.toString();
    },
    async stop() {
      await pod.controller?.stop();
      await proxy.stop();
    },
  };
  if (!o.proxyOnly) pod.startController();
  return pod;
}

/** Waits for :15021/healthz/ready to answer 200; on timeout the error carries the pod's warnings and errors. */
export async function waitReady(pod: GatewayPod, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: number | string = 'no answer';
  while (Date.now() < deadline) {
    try {
      last = await pod.ready();
      if (last === 200) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const problems = (p: { output(): string } | undefined): string =>
    (p?.output() ?? '')
      .split('\n')
      .filter((l) => /"level":(40|50|60)/.test(l))
      .slice(-10)
      .join('\n');
  throw new Error(`the proxy was not ready within ${timeoutMs} ms (last answer: ${last}).\nproxy warnings:\n${problems(pod.proxy)}\ncontroller warnings:\n${problems(pod.controller)}`);
}

/** One sample of a Prometheus text exposition, e.g. metric(text, 'x_total', {kind: 'Pod'}). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([^{\s]+)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x): [string, string] => [x[1] ?? '', x[2] ?? '']));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}
