// The gateway pod without a kubelet. The suite installs the chart with `helm install`; this file reads the
// installed Deployment back from the API server, creates the Pod its ReplicaSet would (the pod template's
// labels, annotations and spec), and starts its two containers, `istio-proxy` (`meshgate proxy`) and the
// `controller` sidecar (`meshgate controller`), as real processes with exactly the command, args and env of
// the containers, resolved as the kubelet resolves them: Downward API `fieldRef`/`resourceFieldRef`, `$(VAR)`
// expansion, the Downward API labels volume. Every process start of the suite goes through startGatewayPod.
//
// Deviations from a kubelet, each the smallest possible (see the comments where they happen):
//   - the Downward API labels volume (labels, annotations) is written to a temporary directory, and the args
//     naming its mount path (`--labels-file=/etc/istio/pod/labels`, `--annotations-file=...`) are rewritten to it
//     (no mount namespaces here);
//   - likewise each configMap volume (the mesh config, `--mesh-config=/etc/istio/config/mesh`) is a directory
//     holding the ConfigMap's keys as read from the API server at start (not updated afterwards, where a kubelet
//     would), and each emptyDir volume is a directory of its own (made 0777, as the kubelet makes an emptyDir),
//     and an arg whose value lies under its mount path is rewritten to it: the xDS socket the two containers
//     share (`--xds-socket=/etc/istio/proxy/XDS`, the istio-envoy emptyDir) lands in the same directory for both;
//   - the controller gets `--kubeconfig=<the ServiceAccount's token kubeconfig>` appended, because the product
//     reads in-cluster credentials only from the fixed path /var/run/secrets/kubernetes.io/serviceaccount
//     (client-node's loadFromCluster) and offers no env to move it;
//   - the command `meshgate` (the image's ENTRYPOINT, on the image's PATH) is bin/meshgate of this checkout;
//   - no service-link env (`<SVC>_SERVICE_HOST`, ... for every Service of the namespace), only KUBERNETES_*.
// Ports are the chart's fixed ones (15000, 15020, 15021, 15090, listeners 8080/8443; xDS is a Unix socket): run the test
// files one at a time (e2e/kube/run.sh does), as two pods of the same node never share a network namespace.
import { randomBytes, createHash } from 'node:crypto';
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '../../controller/model/objects.ts';
import { MESHGATE, REPO, start, type Proc } from '../lib/process.ts';
import { rawRequest } from '../lib/http.ts';
import type { Kube } from './kube.ts';

export interface GatewayPodOptions {
  kube: Kube;
  /** The Deployment installed by `helm install` (the release name): istio-ingressgateway. */
  deployment: string;
  namespace: string;
  /** The pod's address (status.podIP). */
  podIP: string;
  /** The ServiceAccount's kubeconfig the controller uses in place of the in-cluster token files. */
  kubeconfig: string;
  /** Where the Downward API volume is written. */
  dir: string;
  /** Start only the proxy (the controller later, with startController()). */
  proxyOnly?: boolean;
}

export interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  resources?: { limits?: Record<string, string>; requests?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string }[];
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    resourceFieldRef?: { containerName?: string; resource: string; divisor?: string | number };
    configMapKeyRef?: unknown;
    secretKeyRef?: unknown;
  };
}

export interface GatewayPod {
  /** The Pod object created for it (with the Deployment's pod template). */
  pod: KubeObject;
  proxy: Proc;
  controller: Proc | undefined;
  /** What each container was started with (after the substitutions listed at the top of this file). */
  started: Record<string, { command: string; args: string[]; env: Record<string, string> }>;
  ports: { admin: number; status: number; metrics: number; merged: number };
  /** The controller's xDS Unix socket, as both containers' args name it (after the emptyDir substitution). */
  xdsSocket: string;
  startController(): Proc;
  /** Adds/changes labels of the Pod in the API server and rewrites the Downward API labels file, as the kubelet does. */
  relabel(labels: Record<string, string>): Promise<void>;
  adminGet(path: string): Promise<string>;
  /** GET on the status port :15021 (/healthz/ready). */
  ready(): Promise<number>;
  /** The controller's merged /stats/prometheus (proxy + controller metrics). */
  mergedMetrics(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Kubernetes' `$(VAR)` expansion (third_party/forked/golang/expansion): `$(NAME)` becomes the value of NAME
 * when it is defined, and stays as written when it is not; `$$` is an escaped `$`; any other `$` is literal.
 */
export function expand(input: string, vars: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c !== '$' || i + 1 >= input.length) {
      out += c;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const end = input.indexOf(')', i + 2);
      if (end < 0) {
        // Unterminated: Kubernetes keeps "$(" and the rest as they are.
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, end);
      out += Object.hasOwn(vars, name) ? vars[name] : `$(${name})`;
      i = end;
    } else {
      out += c;
    }
  }
  return out;
}

/** A resource.Quantity as a number of base units (cores, bytes). */
function parseQuantity(q: string | number): number {
  const m = /^([+-]?\d+(?:\.\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(String(q).trim());
  if (!m) throw new Error(`cannot parse the quantity '${q}'`);
  const scale: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
  };
  return Number(m[1]) * (m[2] ? (scale[m[2]] ?? 1) : 1);
}

/**
 * A resourceFieldRef as the kubelet writes it (pkg/api/v1/resource ExtractContainerResourceValue): the value
 * divided by the divisor and rounded up (CPU in millicores first, so 2000m / 1 = "2", 1500m / 1 = "2"); without
 * a limit, the node's allocatable amount (here: this machine's CPUs).
 */
export function resourceFieldValue(container: Container, resource: string, divisor: string | number | undefined): string {
  const [kind, name] = resource.split('.') as ['limits' | 'requests', string];
  const raw = container.resources?.[kind]?.[name];
  if (name === 'cpu') {
    const milli = raw !== undefined ? Math.round(parseQuantity(raw) * 1000) : availableParallelism() * 1000;
    const div = Math.round(parseQuantity(divisor ?? '1') * 1000);
    return String(Math.ceil(milli / div));
  }
  if (raw === undefined)
    throw new Error(`resourceFieldRef ${resource} of container ${container.name}: no value, and this harness has no node allocatable for ${name}`);
  return String(Math.ceil(parseQuantity(raw) / parseQuantity(divisor ?? '1')));
}

/** The container's environment as the kubelet builds it: in order, each value able to refer to the earlier ones. */
function containerEnv(pod: KubeObject, containers: Container[], container: Container, base: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...base };
  const status = (pod as KubeObject & { status?: { podIP?: string; hostIP?: string } }).status ?? {};
  const spec = (pod as KubeObject & { spec?: { serviceAccountName?: string; nodeName?: string } }).spec ?? {};
  const fields: Record<string, string | undefined> = {
    'metadata.name': pod.metadata.name,
    'metadata.namespace': pod.metadata.namespace,
    'metadata.uid': pod.metadata.uid,
    'status.podIP': status.podIP,
    'status.hostIP': status.hostIP,
    'spec.serviceAccountName': spec.serviceAccountName,
    'spec.nodeName': spec.nodeName,
  };
  for (const v of container.env ?? []) {
    if (v.valueFrom?.fieldRef) {
      const value = fields[v.valueFrom.fieldRef.fieldPath];
      if (value === undefined)
        throw new Error(`env ${v.name} of container ${container.name}: fieldRef ${v.valueFrom.fieldRef.fieldPath} is not supported by this harness`);
      env[v.name] = value;
    } else if (v.valueFrom?.resourceFieldRef) {
      const ref = v.valueFrom.resourceFieldRef;
      const target = ref.containerName ? containers.find((c) => c.name === ref.containerName) : container;
      if (!target) throw new Error(`env ${v.name}: resourceFieldRef names no container ${ref.containerName}`);
      env[v.name] = resourceFieldValue(target, ref.resource, ref.divisor);
    } else if (v.valueFrom) {
      throw new Error(`env ${v.name} of container ${container.name}: ${Object.keys(v.valueFrom).join(', ')} is not supported by this harness`);
    } else {
      env[v.name] = expand(v.value ?? '', env);
    }
  }
  return env;
}

/** The Downward API `metadata.labels` file: `key="value"` lines, sorted by key (the kubelet's format). */
function labelsFileText(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join('\n');
}

/** The value of `--flag=VALUE` in args. */
const flagValue = (args: string[], flag: string): string => {
  const a = args.find((x) => x.startsWith(`${flag}=`));
  if (a === undefined) throw new Error(`the container's args have no ${flag}=...: ${args.join(' ')}`);
  return a.slice(flag.length + 1);
};

/** An arg whose value (`--flag=VALUE`, or the whole arg) lies under one of the mounts' paths, moved to that mount's directory. */
export function remountArg(arg: string, mounts: { mountPath: string; dir: string }[]): string {
  const eq = arg.indexOf('=');
  const value = arg.slice(eq + 1);
  for (const m of mounts) {
    const prefix = `${m.mountPath.replace(/\/$/, '')}/`;
    if (value.startsWith(prefix)) return `${arg.slice(0, eq + 1)}${m.dir}/${value.slice(prefix.length)}`;
  }
  return arg;
}

const arg = (args: string[], flag: string): number => {
  const a = args.find((x) => x.startsWith(`${flag}=`));
  const port = Number(
    a
      ?.slice(flag.length + 1)
      .split(':')
      .pop(),
  );
  if (!Number.isInteger(port) || port <= 0) throw new Error(`the container's args have no ${flag}=PORT: ${args.join(' ')}`);
  return port;
};

export async function startGatewayPod(o: GatewayPodOptions): Promise<GatewayPod> {
  const { kube } = o;
  const deployment = await kube.get('Deployment', o.namespace, o.deployment);
  if (!deployment) throw new Error(`no Deployment ${o.namespace}/${o.deployment}: was the chart installed?`);
  const template = (
    deployment as KubeObject & {
      spec: {
        template: {
          metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
          spec: Record<string, unknown> & { containers: Container[] };
        };
      };
    }
  ).spec.template;

  // The Pod the Deployment's ReplicaSet would create: <deployment>-<pod-template-hash>-<5 random>, the
  // template's labels plus pod-template-hash, its annotations and spec. schedulerName names no scheduler, so on
  // a real cluster (E2E_KUBECONFIG) nothing schedules it and no kubelet overwrites its status.
  const hash = createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10);
  const podName = `${o.deployment}-${hash}-${randomBytes(3).toString('hex').slice(0, 5)}`;
  const labels = { ...template.metadata.labels, 'pod-template-hash': hash };
  await kube.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: podName, namespace: o.namespace, labels, ...(template.metadata.annotations ? { annotations: template.metadata.annotations } : {}) },
    spec: { ...template.spec, schedulerName: 'meshgate-e2e-no-scheduler' },
  });
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const pod = await kube.mergePatch(
    'Pod',
    o.namespace,
    podName,
    {
      status: {
        phase: 'Running',
        podIP: o.podIP,
        podIPs: [{ ip: o.podIP }],
        conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True', lastTransitionTime: now })),
      },
    },
    'status',
  );

  // The Downward API volumes (here only the labels file), each in a directory of its own.
  const volumes = (template.spec.volumes ?? []) as { name: string; downwardAPI?: { items: { path: string; fieldRef?: { fieldPath: string } }[] } }[];
  const labelsVolume = volumes.find((v) => v.downwardAPI?.items.some((i) => i.fieldRef?.fieldPath === 'metadata.labels'));
  if (!labelsVolume) throw new Error(`the Deployment ${o.deployment} has no Downward API volume with metadata.labels`);
  const labelsItem = labelsVolume.downwardAPI?.items.find((i) => i.fieldRef?.fieldPath === 'metadata.labels')?.path ?? 'labels';
  const volumeDir = join(o.dir, podName, labelsVolume.name);
  mkdirSync(volumeDir, { recursive: true });
  const labelsFile = join(volumeDir, labelsItem);
  const writeLabels = (l: Record<string, string>): void => {
    writeFileSync(`${labelsFile}.tmp`, labelsFileText(l));
    renameSync(`${labelsFile}.tmp`, labelsFile);
  };
  writeLabels(labels);
  // The pod's annotations when the volume has them (Istio's agent, and the controller, read them once at start).
  const annotationsItem = labelsVolume.downwardAPI?.items.find((i) => i.fieldRef?.fieldPath === 'metadata.annotations')?.path;
  if (annotationsItem) writeFileSync(join(volumeDir, annotationsItem), labelsFileText(template.metadata.annotations ?? {}));
  // Each emptyDir: a directory of its own for this pod, shared by the containers that mount it.
  const emptyDirs = new Map<string, string>();
  for (const v of volumes as { name: string; emptyDir?: unknown }[]) {
    if (!v.emptyDir) continue;
    const d = join(o.dir, podName, v.name);
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o777);
    emptyDirs.set(v.name, d);
  }
  // ConfigMap volumes: each key a file, as the kubelet projects them (read once, at start).
  for (const v of volumes as { name: string; configMap?: { name: string } }[]) {
    if (!v.configMap) continue;
    const cm = await kube.get('ConfigMap', o.namespace, v.configMap.name);
    if (!cm) throw new Error(`no ConfigMap ${o.namespace}/${v.configMap.name} for the volume ${v.name}: was the chart installed?`);
    const d = join(o.dir, podName, v.name);
    mkdirSync(d, { recursive: true });
    const data = (cm as { data?: Record<string, string> }).data ?? {};
    for (const [key, value] of Object.entries(data)) writeFileSync(join(d, key), value);
    emptyDirs.set(v.name, d);
  }

  // The image's ENV (Dockerfile: NODE_ENV, MESHGATE_LOG_PRETTY, PATH with /app/bin first: here bin/ of this
  // checkout, then this machine's PATH for node), what the kubelet adds (HOSTNAME, the kubernetes Service's
  // KUBERNETES_SERVICE_*), then the container's own env.
  const kubernetesSvc = (await kube.get('Service', 'default', 'kubernetes')) as
    (KubeObject & { spec?: { clusterIP?: string; ports?: { port: number }[] } }) | undefined;
  const base: Record<string, string> = {
    PATH: `${REPO}bin:${process.env.PATH ?? '/usr/bin:/bin'}`,
    NODE_ENV: 'production',
    MESHGATE_LOG_PRETTY: '0',
    HOSTNAME: podName,
    ...(kubernetesSvc?.spec?.clusterIP
      ? {
          KUBERNETES_SERVICE_HOST: kubernetesSvc.spec.clusterIP,
          KUBERNETES_SERVICE_PORT: String(kubernetesSvc.spec.ports?.[0]?.port ?? 443),
          KUBERNETES_SERVICE_PORT_HTTPS: String(kubernetesSvc.spec.ports?.[0]?.port ?? 443),
        }
      : {}),
  };
  const containers = template.spec.containers;
  const started: GatewayPod['started'] = {};
  const startContainer = (name: string): Proc => {
    const c = containers.find((x) => x.name === name);
    if (!c) throw new Error(`the Deployment ${o.deployment} has no container ${name}`);
    const env = containerEnv(pod, containers, c, base);
    if (c.command?.length !== 1 || c.command[0] !== 'meshgate')
      throw new Error(`container ${name}: command ${JSON.stringify(c.command)} is not the image's ENTRYPOINT ["meshgate"]`);
    // Deviation: the chart names mount paths in args (--labels-file=/etc/istio/pod/labels,
    // --xds-socket=/etc/istio/proxy/XDS); without a mount namespace each volume lives in a temporary
    // directory, and only those paths in the args change.
    const mounts = (c.volumeMounts ?? []).flatMap((m) => {
      const dir = m.name === labelsVolume.name ? volumeDir : emptyDirs.get(m.name);
      return dir === undefined ? [] : [{ mountPath: m.mountPath, dir }];
    });
    const args = (c.args ?? []).map((a) => remountArg(expand(a, env), mounts));
    // Deviation: in a cluster the controller reads its projected token from the fixed in-cluster path
    // /var/run/secrets/kubernetes.io/serviceaccount (volume kube-api-access), which the product cannot be told to
    // read elsewhere; the same ServiceAccount's token comes in a kubeconfig instead (TokenRequest, as the kubelet
    // gets the projected token). This is the only arg added.
    if (c.volumeMounts?.some((m) => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount')) args.push(`--kubeconfig=${o.kubeconfig}`);
    started[name] = { command: MESHGATE, args, env };
    // `env -i`: the process sees exactly this environment, nothing of the test runner's.
    return start('env', ['-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), MESHGATE, ...args]);
  };

  const proxy = startContainer('istio-proxy');
  const proxyArgs = started['istio-proxy']?.args ?? [];
  const controllerArgs = containers.find((c) => c.name === 'controller')?.args ?? [];
  const xdsSocket = flagValue(proxyArgs, '--xds-socket');
  const ports = {
    admin: arg(proxyArgs, '--admin-port'),
    status: arg(proxyArgs, '--status-port'),
    metrics: arg(proxyArgs, '--metrics-port'),
    merged: arg(controllerArgs, '--merged-metrics-port'),
  };
  const gw: GatewayPod = {
    pod,
    proxy,
    controller: undefined,
    started,
    ports,
    xdsSocket,
    startController() {
      if (gw.controller) throw new Error('the controller is already running');
      gw.controller = startContainer('controller');
      return gw.controller;
    },
    async relabel(l) {
      await kube.mergePatch('Pod', o.namespace, podName, { metadata: { labels: l } });
      writeLabels({ ...labels, ...l });
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
      await gw.controller?.stop();
      await proxy.stop();
      await kube.remove('Pod', o.namespace, podName).catch(() => undefined);
    },
  };
  if (!o.proxyOnly) gw.startController();
  return gw;
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
  throw new Error(
    `the proxy was not ready within ${timeoutMs} ms (last answer: ${last}).\nproxy warnings:\n${problems(pod.proxy)}\ncontroller warnings:\n${problems(pod.controller)}`,
  );
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
