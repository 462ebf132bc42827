// `meshgate local`: the embedded default. The controller reads Kubernetes/Istio YAML from a directory and
// serves xDS on a Unix socket in a private directory; the proxy in the same process consumes it over real
// gRPC, exactly as the sidecar pair does in a cluster.
import { withCanonicalLabels } from '../../xds/canonical-service.ts';
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createLogger, type Logger } from '../logger.ts';
import { bindError, parseConcurrency, parseLabels, parsePort, UsageError } from '../usage-error.ts';
import { ObjectStore } from '../../controller/model/store.ts';
import type { GatewaySpec } from '../../controller/model/istio-types.ts';
import { isSubset } from '../../controller/model/labels.ts';
import type { Kind } from '../../controller/model/objects.ts';
import { formatError, type ErrorReporter } from '../../controller/model/validation.ts';
import { startController } from '../../controller/controller.ts';
import { startLocalDirSource } from '../../controller/sources/local-dir.ts';
import { DEFAULT_MESH_CONFIG } from '../../controller/model/mesh-config.ts';
import { PROXY_CONFIG_ANNOTATION, gatewayProxyConfig } from '../../controller/model/proxy-config.ts';
import type { GatewayIdentity } from '../../controller/xds/snapshot.ts';
import { StaticPortError, startProxy } from '../../gateway/proxy.ts';
import { meshConfigUsage, meshConfigPath, startMeshConfig } from '../mesh-config-flag.ts';
import { gatewayStatsInclusion } from '../stats-inclusion.ts';

export const summary = 'run controller + proxy on one machine from a directory of Istio/Kubernetes YAML';
export const usage = `usage: meshgate local --config DIR [flags]

Reads Gateway, VirtualService, DestinationRule, ServiceEntry, AuthorizationPolicy, RequestAuthentication, Telemetry,
Service, EndpointSlice, Endpoints, Pod and Secret objects from DIR (recursive; .yaml/.yml/.json; multi-document), applies changes within a second,
and serves them through the proxy as Istio's ingress gateway would.

flags:
  --config DIR            directory of YAML/JSON objects (required)
  --namespace NS          the gateway's namespace (default istio-system)
  --name NAME             the gateway workload name (default istio-ingressgateway)
  --labels K=V,...        the gateway pod's labels (default istio=ingressgateway,app=istio-ingressgateway)
  --proxy-config YAML     the gateway pod's proxy.istio.io/config annotation: a ProxyConfig (YAML or JSON) over
                          the mesh defaultConfig, e.g. '{"gatewayTopology":{"numTrustedProxies":1}}' to trust
                          one proxy in front (x-forwarded-for)
${meshConfigUsage(26)}
  --admin-port N          Envoy-style admin API on 127.0.0.1 (default 15000)
  --status-port N         readiness /healthz/ready (default 15021)
  --metrics-port N        Prometheus /stats/prometheus (default 15090): the stats Istio's inclusion list keeps
                          (server, cluster_manager, listener_manager, istio_*), plus the proxy config's
                          proxyStatsMatcher, e.g. --proxy-config '{"proxyStatsMatcher":{"inclusionPrefixes":
                          ["cluster.outbound","http."]}}'; the admin API shows every stat
  --xds-port N            serve xDS on TCP 127.0.0.1:N instead of the private Unix socket. Insecure: any
                          local process can then connect and receive every TLS private key over SDS
                          (default: a socket in a new 0700 directory under $XDG_RUNTIME_DIR or the
                          temporary directory, removed on exit)
  --access-log PATH       Istio's TEXT access log to PATH (e.g. /dev/stdout), besides the mesh config's accessLogFile; off by default
  --drain-seconds N       drain time on SIGTERM (default 5)
  --concurrency N         workers serving traffic (Envoy's --concurrency; default: one per CPU)
  --dns-server HOST:PORT  DNS server for ServiceEntry DNS clusters (default: env MESHGATE_DNS_SERVER,
                          else the system resolver)
`;

export interface LocalOptions {
  config: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** The gateway pod's proxy.istio.io/config annotation. */
  proxyConfig?: string;
  /** The MeshConfig file (--mesh-config), watched. */
  meshConfig?: string;
  adminPort: number;
  statusPort: number;
  metricsPort: number;
  /** TCP for xDS, only when asked for; default: a Unix socket in a private directory. */
  xdsPort?: number;
  accessLog?: string;
  drainSeconds: number;
  concurrency: number;
  dnsServer?: string;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function parseLocalArgs(argv: string[]): LocalOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      config: { type: 'string' },
      namespace: { type: 'string' },
      name: { type: 'string' },
      labels: { type: 'string' },
      'proxy-config': { type: 'string' },
      'mesh-config': { type: 'string' },
      'admin-port': { type: 'string' },
      'status-port': { type: 'string' },
      'metrics-port': { type: 'string' },
      'xds-port': { type: 'string' },
      'access-log': { type: 'string' },
      'drain-seconds': { type: 'string' },
      'dns-server': { type: 'string' },
      concurrency: { type: 'string' },
    },
  });
  if (!values.config) throw new UsageError('--config DIR is required (a directory of Istio/Kubernetes YAML)');
  const config = resolve(values.config);
  if (!isDirectory(config)) throw new UsageError(`--config ${values.config}: not a directory`);
  const drain = Number(values['drain-seconds'] ?? 5);
  if (!Number.isFinite(drain) || drain < 0) throw new UsageError(`--drain-seconds must be a number >= 0, got '${values['drain-seconds']}'`);
  const opts: LocalOptions = {
    config,
    namespace: values.namespace ?? 'istio-system',
    name: values.name ?? 'istio-ingressgateway',
    labels: parseLabels('labels', values.labels ?? 'istio=ingressgateway,app=istio-ingressgateway'),
    adminPort: parsePort('admin-port', values['admin-port'], 15000),
    statusPort: parsePort('status-port', values['status-port'], 15021),
    metricsPort: parsePort('metrics-port', values['metrics-port'], 15090),
    drainSeconds: drain,
    concurrency: parseConcurrency(values.concurrency),
  };
  if (values['proxy-config'] !== undefined) {
    // Checked now, as Istio's agent does when it starts (it does not start with an annotation it cannot apply).
    const pc = gatewayProxyConfig(DEFAULT_MESH_CONFIG.defaultConfig, { [PROXY_CONFIG_ANNOTATION]: values['proxy-config'] });
    if (!pc.ok) throw new UsageError(`--proxy-config: ${pc.error}`);
    opts.proxyConfig = values['proxy-config'];
  }
  if (values['xds-port'] !== undefined) opts.xdsPort = parsePort('xds-port', values['xds-port'], 0);
  const meshConfig = meshConfigPath(values['mesh-config']);
  if (meshConfig !== undefined) opts.meshConfig = meshConfig;
  if (values['access-log']) opts.accessLog = values['access-log'];
  if (values['dns-server']) {
    if (!/^[^:,]+:\d+(,[^:,]+:\d+)*$/.test(values['dns-server']))
      throw new UsageError(`--dns-server must be HOST:PORT[,HOST:PORT...], got '${values['dns-server']}'`);
    opts.dnsServer = values['dns-server'];
  }
  return opts;
}

export function logReporter(log: Logger): ErrorReporter {
  return {
    report(errors) {
      for (const e of errors)
        log.error({ kind: e.kind, namespace: e.namespace, name: e.name, file: e.origin.file, field: e.field }, `invalid resource skipped: ${formatError(e)}`);
    },
  };
}

export interface Local {
  close(): Promise<void>;
  drain(): Promise<void>;
}

/**
 * A new directory only this user can enter (mkdtemp creates it 0700), for the xDS socket: under
 * $XDG_RUNTIME_DIR (per user, itself 0700) when set, else the temporary directory.
 */
function privateSocketDir(): string {
  const base = process.env.XDG_RUNTIME_DIR && isDirectory(process.env.XDG_RUNTIME_DIR) ? process.env.XDG_RUNTIME_DIR : tmpdir();
  return mkdtempSync(join(base, 'meshgate-xds-'));
}

const formatLabels = (labels: Readonly<Record<string, string>>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/**
 * Says when no Gateway selects this gateway, since it then serves no listener and nothing else tells:
 * a warning with the gateway's labels, the Gateways present and their selectors, and how to fix it;
 * then an info line when a Gateway selects it again. Once per state change, checked when Gateways
 * change. Selection as istiod's: a Gateway selects the proxy when its spec.selector is a subset of the
 * proxy's labels (no selector: every gateway), whatever the Gateway's namespace.
 */
export function reportGatewaySelection(store: ObjectStore, labels: Readonly<Record<string, string>>, log: Logger): { close(): void } {
  const [example] = Object.entries(labels);
  const fix = `give a Gateway a spec.selector that is a subset of these labels${example ? ` (e.g. selector: {${example[0]}: ${example[1]}})` : ''}`;
  let last: string | undefined;
  const check = (): void => {
    const gateways = store.snapshot().byKind('Gateway');
    const name = (g: (typeof gateways)[number]): string => `${g.obj.metadata.namespace ?? 'default'}/${g.obj.metadata.name}`;
    const selector = (g: (typeof gateways)[number]): Record<string, string> => (g.obj.spec as GatewaySpec | undefined)?.selector ?? {};
    const selecting = gateways.filter((g) => isSubset(selector(g), labels)).map(name);
    if (selecting.length > 0) {
      if (last !== undefined && last !== 'selected') log.info({ gateways: selecting }, `this gateway is now selected by ${selecting.join(', ')}`);
      last = 'selected';
      return;
    }
    const present = gateways.map((g) => ({ gateway: name(g), selector: selector(g) }));
    const state = JSON.stringify(present);
    if (state === last) return;
    last = state;
    if (present.length === 0) {
      log.warn({ labels }, `no Gateway in the config directory, so this gateway (labels ${formatLabels(labels)}) serves no listener: ${fix}`);
      return;
    }
    const selectors = present.map((g) => `${g.gateway} selects {${formatLabels(g.selector)}}`).join(', ');
    log.warn(
      { labels, gateways: present },
      `no Gateway selects this gateway (labels ${formatLabels(labels)}), so it serves no listener: ${selectors}; ${fix}, or start meshgate local with --labels matching a Gateway's selector`,
    );
  };
  const onChange = (kinds: ReadonlySet<Kind>): void => {
    if (kinds.has('Gateway')) check();
  };
  store.on('change', onChange);
  check();
  return { close: () => store.off('change', onChange) };
}

/** The proxy's own ports, as the flags that move them. */
const PORT_FLAGS = { admin: '--admin-port', status: '--status-port', metrics: '--metrics-port' } as const;

/** The gateway pod the controller translates for (`meshgate explain --config` translates for the same one). */
export function localIdentity(o: Pick<LocalOptions, 'namespace' | 'name' | 'labels' | 'proxyConfig'>): GatewayIdentity {
  return {
    namespace: o.namespace,
    podName: o.name,
    labels: o.labels,
    ...(o.proxyConfig !== undefined ? { annotations: { [PROXY_CONFIG_ANNOTATION]: o.proxyConfig } } : {}),
  };
}

export async function startLocal(o: LocalOptions, log: Logger): Promise<Local> {
  const store = new ObjectStore();
  const configLog = log.child({ component: 'config' });
  const reporter = logReporter(configLog);
  const identity = localIdentity(o);
  const socketDir = o.xdsPort === undefined ? privateSocketDir() : undefined;
  const removeSocketDir = (): void => {
    if (socketDir) rmSync(socketDir, { recursive: true, force: true });
  };
  // Also when the process ends without close() (process.exit after a fatal error).
  process.once('exit', removeSocketDir);
  const xds = socketDir ? { socket: join(socketDir, 'XDS') } : { host: '127.0.0.1', port: o.xdsPort ?? 0 };
  const mesh = await startMeshConfig(o.meshConfig, log);
  // Read once, as Istio's agent writes the bootstrap's stats_matcher when the proxy starts.
  const stats = gatewayStatsInclusion((mesh?.current() ?? DEFAULT_MESH_CONFIG).defaultConfig, identity.annotations ?? {}, ['127.0.0.1']);
  if (!stats.ok) {
    mesh?.close();
    removeSocketDir();
    throw new UsageError(`--proxy-config or --mesh-config: ${stats.error}`);
  }
  const controller = await startController({
    store,
    identity: () => identity,
    // startController, startLocalDirSource and startProxy each name their own component: they get the
    // root logger (a child of a child with the same key would write "component" twice on every line).
    log,
    xds,
    reporter,
    ...(mesh ? { mesh } : {}),
  }).catch((e: unknown) => {
    mesh?.close();
    removeSocketDir();
    const err = e as NodeJS.ErrnoException;
    throw 'port' in xds ? bindError('--xds-port', 'the xDS port', `${xds.host}:${xds.port}`, err.code) : err;
  });
  const source = await startLocalDirSource({ dir: o.config, store, log, reporter });
  controller.markSynced();
  const proxy = await startProxy({
    xdsAddress: 'socket' in xds ? `unix:${xds.socket}` : `127.0.0.1:${controller.port}`,
    node: {
      id: `router~127.0.0.1~${o.name}.${o.namespace}~${o.namespace}.svc.cluster.local`,
      cluster: `${o.labels.app ?? o.name}.${o.namespace}`,
      metadata: { NAMESPACE: o.namespace, LABELS: withCanonicalLabels(o.labels, o.name), WORKLOAD_NAME: o.name, CLUSTER_ID: 'Kubernetes' },
    },
    adminPort: o.adminPort,
    statusPort: o.statusPort,
    metricsPort: o.metricsPort,
    drainSeconds: o.drainSeconds,
    concurrency: o.concurrency,
    ...(o.accessLog ? { accessLog: o.accessLog } : {}),
    ...(o.dnsServer ? { dnsServer: o.dnsServer } : {}),
    statsInclusion: stats,
    log,
  }).catch(async (e: unknown) => {
    await source.close();
    await controller.close();
    mesh?.close();
    removeSocketDir();
    throw e instanceof StaticPortError ? bindError(PORT_FLAGS[e.port], `the ${e.port} port`, e.address, e.code) : e;
  });
  await proxy.ready;
  log.info(
    {
      config: o.config,
      admin: `127.0.0.1:${proxy.ports.admin}`,
      status: proxy.ports.status,
      metrics: proxy.ports.metrics,
      xds: 'socket' in xds ? xds.socket : `127.0.0.1:${controller.port}`,
    },
    'meshgate local is ready',
  );
  const selection = reportGatewaySelection(store, o.labels, configLog);
  return {
    drain: () => proxy.drain(),
    async close() {
      selection.close();
      await proxy.close();
      await source.close();
      await controller.close();
      mesh?.close();
      removeSocketDir();
      process.off('exit', removeSocketDir);
    },
  };
}

/** Runs until SIGTERM/SIGINT: drain, then exit. */
export async function runUntilSignal(local: Local, log: Logger): Promise<void> {
  await new Promise<void>((resolveStop) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'draining, then exiting');
      void local
        .drain()
        .then(() => local.close())
        .catch((err: unknown) => log.error({ err }, 'error while stopping'))
        .finally(resolveStop);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

export async function run(argv: string[]): Promise<void> {
  const o = parseLocalArgs(argv);
  const log = createLogger();
  const local = await startLocal(o, log);
  await runUntilSignal(local, log);
}
