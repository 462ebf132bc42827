// The proxy: an xDS (ADS) client feeding the main thread's data plane and its worker threads
// (--concurrency), the admin interface and Istio's two static listeners (15021 readiness, 15090
// Prometheus), Envoy's init sequence (LIVE once the first CDS and LDS are applied and warm) and graceful
// drain.
import { networkInterfaces } from 'node:os';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { CLUSTER_TYPE, ENDPOINT_TYPE, HCM_TYPE, LISTENER_TYPE, ROUTE_TYPE, ROUTER_TYPE, SECRET_TYPE } from '../xds/type-urls.ts';
import { startAdminServer, type AdminContext, type ListenerStatus } from './admin/admin-server.ts';
import { RESOURCE_TYPE, T, withType } from './admin/config-dump.ts';
import { startMetricsServer, startStatusServer } from './admin/status-server.ts';
import { createDataPlane } from './data-plane.ts';
import type { BindAddress, RefusedBinds } from './listener/listener-manager.ts';
import { probeExclusiveBind } from './listener/port-probe.ts';
import { mergeSamples } from './stats/merge.ts';
import type { StatSample } from './stats/store.ts';
import type { WorkerSharing } from './upstream/outlier-detector.ts';
import { SharedCounters } from './workers/shared-counters.ts';
import { WorkerPool } from './workers/worker-pool.ts';
import { AdsClient } from './xds/ads-client.ts';
import type { Json } from './xds/json.ts';

export interface ProxyOptions {
  /**
   * The ADS server as a gRPC target: `unix:PATH` (the controller's owner-only socket, as Envoy reaches
   * pilot-agent on ./etc/istio/proxy/XDS) or `HOST:PORT` (TCP, only when asked for).
   */
  xdsAddress: string;
  node: { id: string; cluster: string; metadata: Record<string, unknown> };
  /** Admin bind address (default 127.0.0.1). */
  adminHost?: string;
  adminPort: number;
  statusPort: number;
  metricsPort: number;
  /** Override every listener's bind address (tests); default: the listener's own address. */
  listenHost?: string;
  /** Drain time for removed listeners and for drain() (Envoy --drain-time-s). Default 5. */
  drainSeconds?: number;
  /** Access log path or /dev/stdout (Istio's TEXT format); off when undefined. */
  accessLog?: string;
  /** Worker threads serving traffic (Envoy --concurrency); the main thread does control only. Default 1. */
  concurrency?: number;
  /**
   * In-process tests: the main thread serves as worker 0 beside concurrency-1 worker threads, so a test can
   * reach into the serving code. Never for a real gateway: a bug that escapes there would end the process.
   */
  serveOnMainThread?: boolean;
  log: Logger;
  /** Called after /quitquitquit closed the proxy (default: process.exit(0)). */
  onQuit?: () => void;
  /** DNS server(s) for STRICT_DNS/LOGICAL_DNS clusters, "HOST:PORT[,...]" (default: env MESHGATE_DNS_SERVER, else the system resolver). */
  dnsServer?: string;
}

export interface Proxy {
  /** Resolves when the first LDS and CDS have been applied and warmed (server state LIVE). */
  ready: Promise<void>;
  ports: { admin: number; status: number; metrics: number };
  /** Graceful drain: connection: close on responses, stop accepting after the drain time or when idle. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

const STATE_LIVE = 0;
const STATE_DRAINING = 1;
const STATE_PRE_INITIALIZING = 2;
const STATE_INITIALIZING = 3;
const STATE_NAMES = ['LIVE', 'DRAINING', 'PRE_INITIALIZING', 'INITIALIZING'];

/** The machine's first non-loopback IPv4 address (Envoy's local address for x-forwarded-for). */
function localIpv4(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** One of the proxy's own ports (admin, status, metrics) could not be bound. */
export class StaticPortError extends Error {
  readonly port: 'admin' | 'status' | 'metrics';
  readonly address: string;
  readonly code: string | undefined;
  constructor(port: 'admin' | 'status' | 'metrics', address: string, cause: NodeJS.ErrnoException) {
    super(`cannot bind the ${port} port ${address}: ${cause.message}`, { cause });
    this.port = port;
    this.address = address;
    this.code = cause.code;
  }
}

/** The addresses another process holds, with the bind error, from one exclusive bind of each. */
async function probeNewBinds(addresses: BindAddress[]): Promise<RefusedBinds> {
  const refused = new Map<string, NodeJS.ErrnoException>();
  for (const a of addresses) {
    const err = await probeExclusiveBind(a.host, a.port);
    if (err) refused.set(`${a.host}:${a.port}`, err);
  }
  return refused;
}

/** The xds-grpc cluster's address, as Istio's bootstrap has it: a pipe for a Unix socket. */
function xdsClusterAddress(target: string): Json {
  if (target.startsWith('unix:')) return { pipe: { path: target.slice('unix:'.length).replace(/^\/\/(?=\/)/, '') } };
  const i = target.lastIndexOf(':');
  return { socket_address: { address: target.slice(0, i).replace(/^\[|\]$/g, ''), port_value: Number(target.slice(i + 1)) } };
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}

function staticListenerJson(name: string, port: number, statPrefix: string, prefix: string, cluster: string): Json {
  return {
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM_TYPE,
              stat_prefix: statPrefix,
              route_config: { virtual_hosts: [{ name: 'backend', domains: ['*'], routes: [{ match: { prefix }, route: { cluster } }] }] },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
            },
          },
        ],
      },
    ],
  };
}

function staticCluster(name: string, address: Json, connectTimeout: string): Json {
  return {
    name,
    type: 'STATIC',
    connect_timeout: connectTimeout,
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
  };
}

export async function startProxy(o: ProxyOptions): Promise<Proxy> {
  const log = o.log.child({ component: 'proxy' });
  const started = Date.now();
  const drainMs = (o.drainSeconds ?? 5) * 1000;
  let state = STATE_PRE_INITIALIZING;
  let healthcheckFailed = false;
  let initialized = false;
  const concurrency = Math.max(1, o.concurrency ?? 1);
  const localAddress = localIpv4();
  // As in Envoy, worker threads 0..N-1 serve all traffic and the main thread does control (xDS, admin, stats,
  // drain), so a bug that escapes one connection's error handling costs one worker, which is replaced, never
  // the process. They share outlier-detection and circuit-breaker counts (gateway/workers/).
  const onMain = o.serveOnMainThread === true;
  const threads = onMain ? concurrency - 1 : concurrency;
  const shared = threads > 0 ? new SharedCounters() : undefined;
  const workerSettings = {
    listenHost: o.listenHost,
    drainMs,
    accessLog: o.accessLog !== undefined,
    dnsServer: o.dnsServer,
    localAddress,
    logLevel: o.log.level,
  };
  const workers = shared ? new WorkerPool(threads, { ...workerSettings, sharedCounters: shared.buffer }, log, () => dp.current(), onMain ? 1 : 0) : undefined;
  const sharing: WorkerSharing | undefined =
    shared && workers
      ? { counters: shared, leader: true, report: () => undefined, onEjection: (cluster, host, ejected) => workers.ejection(cluster, host, ejected) }
      : undefined;
  const dp = createDataPlane({
    log: o.log,
    listenHost: o.listenHost,
    drainMs,
    accessLog: o.accessLog,
    dnsServer: o.dnsServer,
    localAddress,
    reusePort: workers !== undefined,
    worker: onMain ? 0 : -1,
    sharing,
  });
  const { store, clusters, listeners, secrets } = dp;
  if (workers) {
    workers.onOutlierReport = (cluster, host, type) => clusters.get(cluster)?.outlier?.onReport(host, type);
    workers.onAccessLog = (text) => dp.accessLog?.writeLines(text);
  }
  const allStats = async (): Promise<StatSample[]> => mergeSamples(store.snapshot(), workers ? await workers.stats() : []);

  store.computedGauge('server.state', () => (healthcheckFailed && state === STATE_LIVE ? STATE_DRAINING : state));
  store.computedGauge('server.live', () => (state === STATE_LIVE && !healthcheckFailed ? 1 : 0));
  store.computedGauge('server.uptime', () => Math.floor((Date.now() - started) / 1000));
  store.computedGauge('server.concurrency', () => concurrency);
  store.computedGauge('server.memory_allocated', () => process.memoryUsage().heapUsed);
  store.computedGauge('server.memory_heap_size', () => process.memoryUsage().heapTotal);
  store.computedGauge('server.memory_physical_size', () => process.memoryUsage().rss);
  store.computedGauge('server.total_connections', () => listeners.activeConnections);
  store.computedGauge('server.parent_connections', () => 0);
  store.computedGauge('server.hot_restart_epoch', () => 0);
  store.computedGauge('server.days_until_first_cert_expiring', () => 2147483647);
  for (const c of [
    'server.debug_assertion_failures',
    'server.envoy_bug_failures',
    'server.dynamic_unknown_fields',
    'server.static_unknown_fields',
    'server.wip_protos',
  ])
    store.counter(c);
  store.computedGauge('listener_manager.workers_started', () => (initialized ? 1 : 0));

  const adminHost = o.adminHost ?? '127.0.0.1';
  const bindHost = o.listenHost ?? '0.0.0.0';
  const servers: Server[] = [];
  // Set once the ADS client exists; admin handlers may run before that.
  const xdsRef: { client?: AdsClient } = {};
  /** Resource names to ask the control plane for. */
  const subscribe = (typeUrl: string, names: string[]): void => xdsRef.client?.setNames(typeUrl, names);
  let cdsSeen = false;
  let ldsSeen = false;
  let sharedFullLogged = false;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));

  const isReady = (): boolean =>
    (store.valueOf('cluster_manager.cds.update_success') ?? 0) > 0 &&
    (store.valueOf('listener_manager.lds.update_success') ?? 0) > 0 &&
    state === STATE_LIVE &&
    !healthcheckFailed;

  /** Envoy's init manager: LIVE once CDS and LDS answered and every cluster and listener is warm. */
  const checkInit = (): void => {
    if (initialized || !cdsSeen || !ldsSeen) return;
    if (clusters.warming.size > 0 || listeners.warmingCount > 0) return;
    initialized = true;
    if (state === STATE_INITIALIZING) state = STATE_LIVE;
    log.info({ ms: Date.now() - started }, 'initial configuration applied; server is LIVE');
    resolveReady();
  };
  clusters.onWarm = checkInit;
  listeners.onWarm = checkInit;

  const admin: AdminContext = {
    stats: allStats,
    resetCounters: () => {
      store.resetCounters();
      workers?.resetCounters();
    },
    hostStats: async () => (workers ? workers.hostStats() : new Map()),
    clusters: () => [...clusters.active.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    listeners: (): ListenerStatus[] => [
      ...listeners.staticListeners.map((l) => ({ name: l.name, address: l.address, port: l.port })),
      ...[...listeners.active.values()].map((l) => ({ name: l.spec.name, address: l.spec.address, port: l.spec.port })),
    ],
    configDump: (includeEds) => configDump(includeEds),
    state: () => STATE_NAMES[healthcheckFailed && state === STATE_LIVE ? STATE_DRAINING : state] ?? 'LIVE',
    serverInfo: () => ({
      version: 'meshgate/0.1.0/Clean/RELEASE/Node.js',
      state: admin.state(),
      hot_restart_version: 'disabled',
      command_line_options: {
        concurrency,
        mode: 'Serve',
        drain_time: `${drainMs / 1000}s`,
        drain_strategy: 'Immediate',
        parent_shutdown_time: '60s',
        disable_hot_restart: true,
        service_cluster: o.node.cluster,
        service_node: o.node.id,
        local_address_ip_version: 'v4',
        file_flush_interval: '1s',
      },
      node: nodeJson(),
      uptime_current_epoch: `${Math.floor((Date.now() - started) / 1000)}s`,
      uptime_all_epochs: `${Math.floor((Date.now() - started) / 1000)}s`,
    }),
    healthcheckFail: () => {
      healthcheckFailed = true;
    },
    healthcheckOk: () => {
      healthcheckFailed = false;
    },
    drainListeners: (graceful) => {
      void listeners.drainAll(graceful ? drainMs : 0);
      void workers?.drain(graceful ? drainMs : 0);
    },
    quit: () => {
      void proxy.close().then(() => (o.onQuit ? o.onQuit() : process.exit(0)));
    },
  };

  const nodeJson = (): Json => ({ id: o.node.id, cluster: o.node.cluster, metadata: o.node.metadata, user_agent_name: 'envoy' });

  /** Binds one of the proxy's own ports; on failure everything started so far stops (the process can exit). */
  const bindOwn = async (port: 'admin' | 'status' | 'metrics', host: string, n: number, start: () => Promise<Server>): Promise<number> => {
    try {
      const server = await start();
      servers.push(server);
      return (server.address() as { port: number }).port;
    } catch (e) {
      await Promise.all(servers.map(closeServer));
      await workers?.close();
      dp.close();
      throw new StaticPortError(port, `${host}:${n}`, e as NodeJS.ErrnoException);
    }
  };
  const adminPort = await bindOwn('admin', adminHost, o.adminPort, () => startAdminServer(admin, adminHost, o.adminPort));
  const statusPort = await bindOwn('status', bindHost, o.statusPort, () => startStatusServer(bindHost, o.statusPort, isReady));
  const metricsPort = await bindOwn('metrics', bindHost, o.metricsPort, () => startMetricsServer(bindHost, o.metricsPort, allStats));

  // Istio's bootstrap: static listeners and clusters, so /listeners, /clusters and active_clusters
  // look like an Istio gateway's.
  const now = new Date().toISOString();
  listeners.staticListeners.push(
    {
      name: `0.0.0.0_${metricsPort}`,
      address: '0.0.0.0',
      port: metricsPort,
      lastUpdated: now,
      json: staticListenerJson(`0.0.0.0_${metricsPort}`, metricsPort, 'stats', '/stats/prometheus', 'prometheus_stats'),
    },
    {
      name: `0.0.0.0_${statusPort}`,
      address: '0.0.0.0',
      port: statusPort,
      lastUpdated: now,
      json: staticListenerJson(`0.0.0.0_${statusPort}`, statusPort, 'agent', '/healthz/ready', 'agent'),
    },
  );
  clusters.addStatic(staticCluster('prometheus_stats', { socket_address: { address: '127.0.0.1', port_value: adminPort } }, '0.250s'));
  clusters.addStatic(staticCluster('agent', { socket_address: { address: '127.0.0.1', port_value: 15020 } }, '0.250s'));
  clusters.addStatic(staticCluster('sds-grpc', { pipe: { path: './var/run/secrets/workload-spiffe-uds/socket' } }, '1s'));
  clusters.addStatic(staticCluster('xds-grpc', xdsClusterAddress(o.xdsAddress), '1s'));

  const configDump = (includeEds: boolean): Json[] => {
    const types = xdsRef.client?.types;
    const cds = types?.get(CLUSTER_TYPE);
    const lds = types?.get(LISTENER_TYPE);
    const out: Json[] = [];
    out.push({
      '@type': T.bootstrap,
      bootstrap: {
        node: nodeJson(),
        static_resources: {
          listeners: listeners.staticListeners.map((l) => l.json),
          clusters: clusters.staticClusters().map((c) => c.json),
        },
        dynamic_resources: {
          lds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
          cds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
          ads_config: {
            api_type: 'GRPC',
            set_node_on_first_message_only: true,
            transport_api_version: 'V3',
            grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
          },
        },
        admin: { address: { socket_address: { address: adminHost, port_value: adminPort } } },
      },
      last_updated: new Date(started).toISOString(),
    });
    const dyn = clusters.dynamicActive().sort((a, b) => (a.name < b.name ? -1 : 1));
    const clusterDump: Json = { '@type': T.clusters };
    if (cds?.version) clusterDump.version_info = cds.version;
    clusterDump.static_clusters = clusters.staticClusters().map((c) => ({ cluster: withType(RESOURCE_TYPE.cluster, c.json), last_updated: c.lastUpdated }));
    clusterDump.dynamic_active_clusters = dyn.map((c) => ({
      version_info: c.versionInfo,
      cluster: withType(RESOURCE_TYPE.cluster, c.json),
      last_updated: c.lastUpdated,
    }));
    if (clusters.warming.size > 0) {
      clusterDump.dynamic_warming_clusters = [...clusters.warming.values()].map((c) => ({
        version_info: c.versionInfo,
        cluster: withType(RESOURCE_TYPE.cluster, c.json),
        last_updated: c.lastUpdated,
      }));
    }
    out.push(clusterDump);
    if (includeEds) {
      const eds: Json = { '@type': T.endpoints };
      eds.static_endpoint_configs = clusters
        .staticClusters()
        .filter((c) => c.spec.loadAssignment)
        .map((c) => ({ endpoint_config: withType(RESOURCE_TYPE.endpoint, c.spec.loadAssignment as Json) }));
      const edsVersion = types?.get(ENDPOINT_TYPE)?.version ?? '';
      eds.dynamic_endpoint_configs = dyn
        .filter((c) => c.assignment)
        .map((c) => ({ version_info: edsVersion, endpoint_config: withType(RESOURCE_TYPE.endpoint, c.assignment as Json), last_updated: c.lastUpdated }));
      out.push(eds);
    }
    const ldsDump: Json = { '@type': T.listeners };
    if (lds?.version) ldsDump.version_info = lds.version;
    ldsDump.static_listeners = listeners.staticListeners.map((l) => ({ listener: withType(RESOURCE_TYPE.listener, l.json), last_updated: l.lastUpdated }));
    ldsDump.dynamic_listeners = [...listeners.active.values()].map((l) => {
      const st = { version_info: l.versionInfo, listener: withType(RESOURCE_TYPE.listener, l.json), last_updated: l.lastUpdated };
      return l.warm ? { name: l.spec.name, active_state: st } : { name: l.spec.name, warming_state: st };
    });
    out.push(ldsDump);
    out.push({ '@type': T.scopedRoutes });
    out.push({
      '@type': T.routes,
      static_route_configs: listeners.staticListeners.map((l) => {
        const hcm = (((l.json.filter_chains as Json[])[0]?.filters as Json[])[0]?.typed_config ?? {}) as Json;
        return { route_config: withType(RESOURCE_TYPE.route, hcm.route_config as Json), last_updated: l.lastUpdated };
      }),
      dynamic_route_configs: [...listeners.routes.values()]
        .filter((r) => r.json !== undefined)
        .map((r) => ({ version_info: r.versionInfo, route_config: withType(RESOURCE_TYPE.route, r.json as Json), last_updated: r.lastUpdated })),
    });
    out.push(secrets.configDump());
    return out;
  };

  const ads = new AdsClient({
    address: o.xdsAddress,
    node: { id: o.node.id, cluster: o.node.cluster, metadata: o.node.metadata },
    log: o.log.child({ component: 'xds' }),
    store,
    handler: {
      apply: async (typeUrl, resources, version) => {
        // The workers first, then the main thread: once admin shows an update, every worker serves it,
        // and it is ACKed only after all of them applied it. They reject exactly what the main thread does.
        // Listener addresses new to us are probed first (listener/port-probe.ts): our threads bind with
        // SO_REUSEPORT, which would let them join another process's port and split its traffic.
        const refused = workers && typeUrl === LISTENER_TYPE ? await probeNewBinds(listeners.newBindAddresses(resources)) : undefined;
        const workerErrors = workers ? await workers.apply(typeUrl, resources, version, refused) : [];
        const { errors, subscriptions } = await dp.apply(typeUrl, resources, version, refused);
        for (const e of workerErrors) if (!errors.includes(e)) errors.push(e);
        if (subscriptions.eds) subscribe(ENDPOINT_TYPE, subscriptions.eds);
        if (subscriptions.rds) subscribe(ROUTE_TYPE, subscriptions.rds);
        if (subscriptions.sds) subscribe(SECRET_TYPE, subscriptions.sds);
        if (typeUrl === CLUSTER_TYPE) cdsSeen = true;
        if (typeUrl === LISTENER_TYPE) ldsSeen = true;
        if (shared?.full && !sharedFullLogged) {
          sharedFullLogged = true;
          log.warn(
            { concurrency },
            "the workers' shared counter table is full: outlier detection and circuit breakers of clusters and hosts added from now on count per worker; restart the proxy to start a new table",
          );
        }
        checkInit();
        return errors;
      },
    },
  });
  xdsRef.client = ads;
  state = STATE_INITIALIZING;
  ads.start();
  log.info({ xds: o.xdsAddress, node: o.node.id, admin: adminPort, status: statusPort, metrics: metricsPort }, 'proxy started');

  let closed = false;
  const proxy: Proxy = {
    ready,
    ports: { admin: adminPort, status: statusPort, metrics: metricsPort },
    drain: async () => {
      state = STATE_DRAINING;
      await Promise.all([listeners.drainAll(drainMs), workers?.drain(drainMs)]);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      ads.close();
      await workers?.close();
      dp.close();
      await Promise.all(servers.map(closeServer));
    },
  };
  return proxy;
}
