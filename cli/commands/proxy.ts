// `meshgate proxy`: the data plane, as istio-proxy runs in a gateway pod. Connects to the controller's ADS
// server over the Unix socket they share (an emptyDir at /etc/istio/proxy, as Istio's), serves the
// listeners it receives, admin on 127.0.0.1:15000, readiness on :15021, Prometheus
// stats on :15090. SIGTERM drains (connection: close, then stop accepting) and exits 0.
import { withCanonicalLabels } from '../../xds/canonical-service.ts';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger } from '../logger.ts';
import { bindError, parseConcurrency, parseLabels, parsePort, StartupError, UsageError } from '../usage-error.ts';
import { StaticPortError, startProxy } from '../../gateway/proxy.ts';
import { parseLabelsFile } from '../../xds/labels-file.ts';
import { xdsTarget } from '../xds-flags.ts';
import { meshConfigPath, startMeshConfig } from '../mesh-config-flag.ts';
import { gatewayStatsInclusion } from '../stats-inclusion.ts';
import { DEFAULT_MESH_CONFIG } from '../../controller/model/mesh-config.ts';
import type { StatsInclusion } from '../../gateway/stats/stats-matcher.ts';
import type { Logger } from '../logger.ts';

export const summary = 'run the gateway proxy (xDS client, listeners, admin on :15000)';

export const usage = `usage: meshgate proxy [flags]

Runs the data plane of an Istio-compatible gateway: an Envoy xDS v3 (ADS) client and the listeners,
routes and clusters it receives.

flags:
  --xds-socket PATH         the controller's ADS Unix socket (default /etc/istio/proxy/XDS, the emptyDir
                            the chart mounts in both containers, as Istio's agent serves Envoy)
  --xds-address HOST:PORT   reach the controller over TCP instead (only with the controller's
                            --xds-address). Insecure: SDS carries every TLS private key
  --admin-port N            admin interface on 127.0.0.1 (default 15000)
  --status-port N           readiness listener, /healthz/ready (default 15021)
  --metrics-port N          Prometheus listener, /stats/prometheus (default 15090)
  --concurrency N           workers serving traffic, each with its own upstream connections; 0 or
                            empty: one per CPU (default). The chart passes the CPU limit (ISTIO_CPU_LIMIT)
  --drain-seconds N         drain time on SIGTERM and for removed listeners (default 5)
  --access-log PATH         Istio's TEXT access log to PATH (or /dev/stdout), besides the xDS access loggers; off by default
  --labels k=v,...          pod labels for the node metadata (default: env POD_LABELS, or --labels-file)
  --labels-file PATH        Kubernetes downward-API labels file (k="v" per line)
  --annotations-file PATH   the pod's Downward API annotations file (as Istio mounts /etc/istio/pod/annotations),
                            read at start: proxy.istio.io/config (its proxyStatsMatcher) and
                            sidecar.istio.io/statsInclusion{Prefixes,Suffixes,Regexps} add stats to the
                            metrics port's Istio inclusion list
  --mesh-config FILE        Istio's MeshConfig, read at start: its defaultConfig.proxyStatsMatcher likewise
  --listen-host ADDR        bind every listener on ADDR instead of its own address (testing)
  --dns-server HOST:PORT    DNS server for DNS clusters (ServiceEntry resolution DNS); default: env
                            MESHGATE_DNS_SERVER, else the system resolver
  --help                    this help

environment: POD_NAME, POD_NAMESPACE, INSTANCE_IP (node id router~IP~POD.NS~NS.svc.cluster.local),
ISTIO_META_CLUSTER_ID, MESHGATE_LOG_LEVEL.
`;

/** --labels-file: the Downward API labels file, read once at start; a file that cannot be read or parsed stops it. */
function readLabelsFile(path: string): Record<string, string> {
  try {
    return parseLabelsFile(readFileSync(path, 'utf8'), path);
  } catch (e) {
    throw new StartupError(`--labels-file: ${(e as Error).message}`);
  }
}

/** --annotations-file: the Downward API annotations, read once at start; unreadable, none apply (as Istio's agent). */
function readAnnotations(path: string | undefined, log: Logger): Record<string, string> {
  if (path === undefined) return {};
  try {
    return parseLabelsFile(readFileSync(path, 'utf8'), path);
  } catch (e) {
    log.warn({ file: path, err: (e as Error).message }, 'cannot read the pod annotations file: no pod annotation applies');
    return {};
  }
}

/**
 * The metrics port's stats inclusion list, decided at start as Istio's agent writes its bootstrap. The mesh config
 * is read once (an invalid one is reported and istiod's defaults apply, as in the controller); an annotation or
 * pattern Envoy would refuse stops the proxy, as Envoy does not start with such a bootstrap.
 */
async function statsInclusion(meshFlag: string | undefined, annotationsFile: string | undefined, ip: string, log: Logger): Promise<StatsInclusion> {
  const mesh = await startMeshConfig(meshConfigPath(meshFlag), log);
  const defaultConfig = (mesh?.current() ?? DEFAULT_MESH_CONFIG).defaultConfig;
  mesh?.close();
  const r = gatewayStatsInclusion(defaultConfig, readAnnotations(annotationsFile, log), [ip]);
  if (!r.ok) throw new StartupError(`${r.error} (--annotations-file ${annotationsFile ?? ''}, --mesh-config ${meshFlag ?? ''})`);
  log.child({ component: 'stats' }).info({ inclusionList: r.patterns }, 'the metrics port exports the stats of the inclusion list');
  return r;
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'xds-socket': { type: 'string' },
      'xds-address': { type: 'string' },
      'admin-port': { type: 'string' },
      'status-port': { type: 'string' },
      'metrics-port': { type: 'string' },
      concurrency: { type: 'string' },
      'drain-seconds': { type: 'string' },
      'access-log': { type: 'string' },
      labels: { type: 'string' },
      'labels-file': { type: 'string' },
      'listen-host': { type: 'string' },
      'dns-server': { type: 'string' },
      'annotations-file': { type: 'string' },
      'mesh-config': { type: 'string' },
    },
    strict: true,
  });
  const xdsAddress = xdsTarget(values['xds-socket'], values['xds-address']);
  const drainSeconds = Number(values['drain-seconds'] ?? '5');
  if (!Number.isFinite(drainSeconds) || drainSeconds < 0)
    throw new UsageError(`--drain-seconds must be a non-negative number, got '${values['drain-seconds']}'`);
  const concurrency = parseConcurrency(values.concurrency);

  const namespace = process.env.POD_NAMESPACE || 'istio-system';
  const podName = process.env.POD_NAME || hostname();
  const ip = process.env.INSTANCE_IP || '127.0.0.1';
  let labels: Record<string, string> = {};
  if (values['labels-file']) labels = readLabelsFile(values['labels-file']);
  else if (values.labels) labels = parseLabels('labels', values.labels);
  else if (process.env.POD_LABELS) labels = parseLabels('POD_LABELS', process.env.POD_LABELS);

  // The Deployment's name (the chart sets ISTIO_META_WORKLOAD_NAME, as Istio's injector does for gateway pods).
  const workloadName = process.env.ISTIO_META_WORKLOAD_NAME || labels.app || podName;

  const log = createLogger({ name: 'meshgate-proxy' });
  const stats = await statsInclusion(values['mesh-config'], values['annotations-file'], ip, log);
  const proxy = await startProxy({
    xdsAddress,
    node: {
      id: `router~${ip}~${podName}.${namespace}~${namespace}.svc.cluster.local`,
      cluster: `${labels.app ?? 'istio-ingressgateway'}.${namespace}`,
      metadata: {
        NAMESPACE: namespace,
        NAME: podName,
        LABELS: withCanonicalLabels(labels, workloadName),
        INSTANCE_IPS: ip,
        CLUSTER_ID: process.env.ISTIO_META_CLUSTER_ID ?? 'Kubernetes',
        WORKLOAD_NAME: workloadName,
        ENVOY_STATUS_PORT: parsePort('status-port', values['status-port'], 15021),
        ENVOY_PROMETHEUS_PORT: parsePort('metrics-port', values['metrics-port'], 15090),
      },
    },
    adminPort: parsePort('admin-port', values['admin-port'], 15000),
    statusPort: parsePort('status-port', values['status-port'], 15021),
    metricsPort: parsePort('metrics-port', values['metrics-port'], 15090),
    drainSeconds,
    concurrency,
    ...(values['access-log'] ? { accessLog: values['access-log'] } : {}),
    ...(values['listen-host'] ? { listenHost: values['listen-host'] } : {}),
    ...(values['dns-server'] ? { dnsServer: values['dns-server'] } : {}),
    statsInclusion: stats,
    log,
  }).catch((e: unknown) => {
    throw e instanceof StaticPortError ? bindError(`--${e.port}-port`, `the ${e.port} port`, e.address, e.code) : e;
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, drainSeconds }, 'draining');
    void proxy
      .drain()
      .then(() => proxy.close())
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await new Promise<void>(() => undefined);
}
