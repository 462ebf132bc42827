// `meshgate controller`: the control-plane sidecar of a gateway pod. Watches the Kubernetes API, translates
// the Istio config that selects this pod into Envoy xDS, serves it to `meshgate proxy` over gRPC on a Unix
// socket only the pod's containers can open (SDS carries private keys),
// and serves the pod's merged Prometheus metrics (proxy + controller) on :15020, as Istio's pilot-agent does.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import { startController, type Controller } from '../../controller/controller.ts';
import type { Kind, KubeObject } from '../../controller/model/objects.ts';
import { ObjectStore } from '../../controller/model/store.ts';
import { KubeClient, loadKubeConfig } from '../../controller/sources/kube/client.ts';
import type { ValidationError } from '../../controller/model/validation.ts';
import { createEventReporter } from '../../controller/sources/kube/events.ts';
import { createStatusWriter, statusConditionType } from '../../controller/sources/kube/status.ts';
import { gatewayIdentity, parseLabelsEnv, readPodAnnotations } from '../../controller/sources/kube/identity.ts';
import { DEFAULT_MESH_CONFIG } from '../../controller/model/mesh-config.ts';
import { gatewayProxyConfig } from '../../controller/model/proxy-config.ts';
import { startKubeSource } from '../../controller/sources/kube/source.ts';
import { createLogger, type Logger } from '../logger.ts';
import { bindError, StartupError, UsageError, parsePort } from '../usage-error.ts';
import { DEFAULT_XDS_SOCKET } from '../xds-flags.ts';
import { meshConfigPath, meshConfigUsage, startMeshConfig } from '../mesh-config-flag.ts';

export const summary = 'run the controller sidecar: watch the Kubernetes API and serve xDS to the proxy';
export const usage = `usage: meshgate controller [flags]

Watches Istio Gateways, VirtualServices, DestinationRules, ServiceEntries, AuthorizationPolicies,
RequestAuthentications and Telemetries, Services, EndpointSlices, Pods, and Secrets of its own namespace; translates the
Gateways that select this pod into Envoy xDS and serves them to 'meshgate proxy'. xDS is held back until the first list of every watched kind is complete.

flags:
  --kubeconfig PATH            kubeconfig file (default: the pod's service account; outside a cluster
                               $KUBECONFIG or ~/.kube/config)
  --xds-socket PATH            serve ADS on this Unix socket, created 0600 (its directory 0700 when
                               created here) (default /etc/istio/proxy/XDS: the emptyDir the chart
                               mounts in both containers, where Istio's agent serves Envoy)
  --xds-address HOST:PORT      serve ADS on TCP instead. Insecure: any process that reaches it gets
                               every TLS private key over SDS
  --watch-namespaces a,b       watch Istio config, Services, EndpointSlices and Pods only in these
                               namespaces and the pod's own (default: all namespaces); then Roles in
                               those namespaces suffice, no ClusterRole (the chart's rbac.scope=namespace)
  --labels-file PATH           the pod's labels, a Downward API file of key="value" lines
                               (as Istio mounts /etc/istio/pod/labels)
  --annotations-file PATH      the pod's annotations, a Downward API file (as Istio mounts
                               /etc/istio/pod/annotations), read at start: its proxy.istio.io/config
                               (e.g. gatewayTopology.numTrustedProxies) applies over the mesh default
${meshConfigUsage(31)}
  --merged-metrics-port PORT   serve /stats/prometheus (proxy + controller metrics) and /healthz/ready
                               on 0.0.0.0:PORT (default 15020; 0 disables)
  --proxy-metrics-url URL      the proxy's Prometheus stats to merge
                               (default http://127.0.0.1:15090/stats/prometheus)

environment:
  POD_NAME, POD_NAMESPACE      the gateway pod (Downward API); POD_NAMESPACE falls back to the service
                               account's namespace, POD_NAME to the host name
  POD_LABELS                   k=v,k2=v2: the pod's labels when there is no labels file
  MESHGATE_LOG_LEVEL           debug, info (default), warn, error

The labels of the pod as the API server has them win over the file and POD_LABELS once the pod is
found there (as istiod does). RBAC and wiring: docs/kubernetes.md.
`;

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const PROM_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function parseHostPort(flag: string, v: string): { host: string; port: number } {
  const i = v.lastIndexOf(':');
  if (i <= 0) throw new UsageError(`--${flag} must be HOST:PORT, got '${v}'`);
  return { host: v.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: parsePort(flag, v.slice(i + 1), 0) };
}

function podNamespace(): string {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim();
  } catch {
    throw new UsageError(
      'POD_NAMESPACE is not set and there is no service-account namespace file: set POD_NAMESPACE (Downward API fieldRef metadata.namespace)',
    );
  }
}

/** Drops from `ours` the metric families `theirs` already declares, so the merged text stays valid. */
export function mergeMetrics(theirs: string, ours: string): string {
  const declared = new Set([...theirs.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
  const families = ours.split(/^(?=# HELP )/m);
  const kept = families.filter((f) => {
    const name = /^# HELP (\S+)/.exec(f)?.[1];
    return !name || !declared.has(name);
  });
  const head = theirs && !theirs.endsWith('\n') ? `${theirs}\n` : theirs;
  return head + kept.join('');
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      'xds-socket': { type: 'string' },
      'xds-address': { type: 'string' },
      'watch-namespaces': { type: 'string' },
      'labels-file': { type: 'string' },
      'annotations-file': { type: 'string' },
      'merged-metrics-port': { type: 'string' },
      'mesh-config': { type: 'string' },
      'proxy-metrics-url': { type: 'string', default: 'http://127.0.0.1:15090/stats/prometheus' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values['xds-socket'] !== undefined && values['xds-address'] !== undefined)
    throw new UsageError('--xds-socket and --xds-address name two ways to serve xDS: give one');
  if (values['xds-socket'] === '') throw new UsageError('--xds-socket must name a file');
  const xds =
    values['xds-address'] !== undefined ? parseHostPort('xds-address', values['xds-address']) : { socket: values['xds-socket'] ?? DEFAULT_XDS_SOCKET };
  const metricsPort = parsePort('merged-metrics-port', values['merged-metrics-port'], 15020);
  const namespaces = (values['watch-namespaces'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of namespaces) {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n))
      throw new UsageError(`--watch-namespaces takes namespace names separated by commas; '${n}' is not a namespace name`);
  }
  const meshConfigFile = meshConfigPath(values['mesh-config']);
  const proxyMetricsUrl = values['proxy-metrics-url'];
  try {
    new URL(proxyMetricsUrl);
  } catch {
    throw new UsageError(`--proxy-metrics-url must be a URL, got '${proxyMetricsUrl}'`);
  }
  const envLabels = ((): Record<string, string> => {
    try {
      return parseLabelsEnv(process.env.POD_LABELS ?? '');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();
  const ns = podNamespace();
  const podName = process.env.POD_NAME || hostname();

  const root = createLogger({ name: 'meshgate-controller' });
  const log = root.child({ component: 'main' });
  const annotations = values['annotations-file'] ? readPodAnnotations(values['annotations-file'], root) : {};
  // Checked now, as Istio's agent does when it starts: it does not start with an annotation it cannot apply.
  const proxyConfig = gatewayProxyConfig(DEFAULT_MESH_CONFIG.defaultConfig, annotations);
  if (!proxyConfig.ok) throw new StartupError(`the gateway pod's ${proxyConfig.error} (--annotations-file ${values['annotations-file'] ?? ''})`);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const scrapeFailures = new Counter({
    name: 'meshgate_controller_proxy_scrape_failures_total',
    help: 'Failed scrapes of the proxy metrics for the merged /stats/prometheus.',
    registers: [registry],
  });

  const client = ((): KubeClient => {
    try {
      return new KubeClient(loadKubeConfig(values.kubeconfig));
    } catch (err) {
      // Credentials are the user's to fix: say what is missing, without a stack trace.
      throw new UsageError((err as Error).message);
    }
  })();
  const store = new ObjectStore();
  const source = startKubeSource({
    client,
    namespaces,
    podNamespace: ns,
    podName,
    store,
    log: root,
    registry,
  });
  const identity = gatewayIdentity({
    podName,
    podNamespace: ns,
    envLabels,
    registryLabels: () => source.ownPodLabels(),
    annotations,
    log: root,
    ...(values['labels-file'] ? { labelsFile: values['labels-file'] } : {}),
  });
  const reporter = createEventReporter({
    client: source.client,
    log: root,
    instance: podName,
    ...(source.metrics ? { metrics: source.metrics } : {}),
    index: () => objectIndex(store),
  });
  // Status conditions on the Istio objects this gateway rejects or cannot honour (written once synced).
  const status = createStatusWriter({
    client: source.client,
    log: root,
    snapshot: () => store.snapshot(),
    conditionType: () => {
      const id = identity();
      return statusConditionType(id.namespace, id.labels);
    },
    ...(source.metrics ? { metrics: source.metrics } : {}),
  });
  const onErrors = (errors: readonly ValidationError[]): void => status.update(errors);

  const running: { controller?: Controller; mesh?: { close(): void } } = {};
  let ready = false;
  let metricsServer: Server | undefined;
  let closing: Promise<void> | undefined;
  const shutdown = (signal: string): Promise<void> =>
    (closing ??= (async () => {
      log.info({ signal }, 'shutting down');
      metricsServer?.close();
      if (values['labels-file']) unwatchFile(values['labels-file']);
      await running.controller?.close();
      running.mesh?.close();
      await source.close();
      status.close();
      await reporter.flush();
      log.info('stopped');
    })());
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void shutdown(sig).then(() => process.exit(0)));

  if (metricsPort > 0) {
    metricsServer = await serveMergedMetrics({ port: metricsPort, proxyMetricsUrl, registry, scrapeFailures, ready: () => ready, log: root }).catch(
      async (e: unknown) => {
        await source.close();
        throw e;
      },
    );
  }

  const mesh = await startMeshConfig(meshConfigFile, root);
  const controller = await startController({ store, identity, log: root, xds, reporter, onErrors, registry, ...(mesh ? { mesh } : {}) }).catch(
    async (e: unknown) => {
      mesh?.close();
      metricsServer?.close();
      await source.close();
      const err = e as NodeJS.ErrnoException;
      if ('port' in xds) throw bindError('--xds-address', 'the xDS address', `${xds.host}:${xds.port}`, err.code);
      throw new StartupError(`cannot serve xDS on ${xds.socket}: ${err.message} (--xds-socket)`);
    },
  );
  running.controller = controller;
  if (mesh) running.mesh = mesh;
  const labelsFile = values['labels-file'];
  if (labelsFile) {
    // The kubelet rewrites the Downward API file on relabel. A relabel also arrives through the Pod watch,
    // but not when the pod is not visible there: push when the file changes (no-op if the labels did not).
    watchFile(labelsFile, { interval: 2_000 }, () => controller.pushNow());
  }
  log.info(
    { xds: 'port' in xds ? `${xds.host}:${controller.port}` : xds.socket, pod: `${ns}/${podName}`, namespaces: namespaces.length ? namespaces : 'all' },
    'serving xDS (held until the Kubernetes caches are synced)',
  );
  await source.synced;
  if (closing) return;
  controller.markSynced();
  status.enable();
  ready = true;
  log.info('Kubernetes caches synced: xDS is being served');
}

/** Finds objects of one store snapshot by kind/namespace/name, indexing each kind on first use. */
function objectIndex(store: ObjectStore): (kind: string, namespace: string, name: string) => KubeObject | undefined {
  const snap = store.snapshot();
  const byKind = new Map<string, Map<string, KubeObject>>();
  return (kind, namespace, name) => {
    let m = byKind.get(kind);
    if (!m) {
      m = new Map(snap.byKind(kind as Kind).map((o) => [`${o.obj.metadata.namespace ?? ''}/${o.obj.metadata.name}`, o.obj]));
      byKind.set(kind, m);
    }
    return m.get(`${namespace}/${name}`);
  };
}

async function serveMergedMetrics(o: {
  port: number;
  proxyMetricsUrl: string;
  registry: Registry;
  scrapeFailures: Counter;
  ready: () => boolean;
  log: Logger;
}): Promise<Server> {
  const log = o.log.child({ component: 'merged-metrics' });
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz/ready') {
      const ok = o.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ready\n' : 'not ready: the Kubernetes caches are not synced yet\n');
      return;
    }
    if (path !== '/stats/prometheus' && path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: try /stats/prometheus or /healthz/ready\n');
      return;
    }
    void (async () => {
      let proxy = '';
      try {
        const r = await fetch(o.proxyMetricsUrl, { signal: AbortSignal.timeout(5_000) });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        proxy = await r.text();
      } catch (err) {
        // As pilot-agent: a failed proxy scrape still serves the controller's own metrics.
        o.scrapeFailures.inc();
        log.debug({ url: o.proxyMetricsUrl, err: (err as Error).message }, 'could not scrape the proxy metrics');
      }
      const body = mergeMetrics(proxy, await o.registry.metrics());
      res.writeHead(200, { 'content-type': PROM_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    })().catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'merged metrics failed');
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(bindError('--merged-metrics-port', 'the merged metrics port', `0.0.0.0:${o.port}`, err.code)));
    server.listen(o.port, '0.0.0.0', () => resolve());
  });
  log.info({ port: o.port, proxy: o.proxyMetricsUrl }, 'serving merged /stats/prometheus and /healthz/ready');
  return server;
}
