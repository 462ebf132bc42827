// The proxy: an xDS (ADS) client feeding the main thread's data plane and its worker threads
// (--concurrency), the admin interface and Istio's two static listeners (15021 readiness, 15090
// Prometheus), Envoy's init sequence (LIVE once the first CDS and LDS are applied and warm) and graceful
// drain.
import { localNodeFromMetadata } from './stats/istio-metrics.ts';
import { networkInterfaces } from 'node:os';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { envoy } from '../xds/envoy.ts';
import { ENDPOINT_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../xds/type-urls.ts';
import { startAdminServer, type AdminContext, type ListenerStatus } from './admin/admin-server.ts';
import { addIstioBootstrap, type OwnPorts } from './admin/bootstrap.ts';
import { assembleConfigDump } from './admin/config-dump.ts';
import { registerServerStats } from './admin/server-stats.ts';
import { ServerState } from './admin/server-state.ts';
import { startMetricsServer, startStatusServer } from './admin/status-server.ts';
import { statsFilter, type StatsInclusion } from './stats/stats-matcher.ts';
import { ProxyThreads } from './workers/proxy-threads.ts';
import { AdsClient, type XdsTypeUrl } from './xds/ads-client.ts';

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
  /**
   * Envoy's bootstrap stats_flush_interval (default 5 s): how often histograms are merged, i.e. what /stats
   * shows as a histogram's interval, and how late a recorded value appears.
   */
  statsFlushIntervalMs?: number;
  /** DNS server(s) for STRICT_DNS/LOGICAL_DNS clusters, "HOST:PORT[,...]" (default: env MESHGATE_DNS_SERVER, else the system resolver). */
  dnsServer?: string;
  /**
   * The stats the metrics port exports (Istio's bootstrap stats_matcher, stats/stats-matcher.ts; the CLI always
   * gives it), shown in the bootstrap's /config_dump; the admin API shows every stat. Default: every stat.
   */
  statsInclusion?: StatsInclusion;
}

export interface Proxy {
  /** Resolves when the first LDS and CDS have been applied and warmed (server state LIVE). */
  ready: Promise<void>;
  ports: { admin: number; status: number; metrics: number };
  /** Graceful drain: connection: close on responses, stop accepting after the drain time or when idle. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

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

/** The proxy's own servers (admin, readiness, metrics), bound one by one; when one fails, those bound close. */
class OwnServers {
  /** The ports bound so far (0 until bound). */
  readonly ports: OwnPorts = { admin: 0, status: 0, metrics: 0 };
  private readonly servers: Server[] = [];

  async bind(port: keyof OwnPorts, host: string, n: number, start: () => Promise<Server>): Promise<void> {
    try {
      const server = await start();
      this.servers.push(server);
      this.ports[port] = (server.address() as { port: number }).port;
    } catch (e) {
      await this.close();
      throw new StaticPortError(port, `${host}:${n}`, e as NodeJS.ErrnoException);
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }
}

/** The node as Envoy reports it in /server_info and the bootstrap dump. */
function envoyNode(node: ProxyOptions['node']): envoy.config.core.v3.Node {
  return { id: node.id, cluster: node.cluster, metadata: node.metadata as envoy.config.core.v3.Node['metadata'], user_agent_name: 'envoy' };
}

interface AdminSources {
  o: ProxyOptions;
  threads: ProxyThreads;
  state: ServerState;
  started: number;
  concurrency: number;
  drainMs: number;
  adminHost: string;
  ports: OwnPorts;
  /** The last version of an xDS type the client accepted ('' before any, or before the client exists). */
  xdsVersion: (typeUrl: XdsTypeUrl) => string;
  quit: () => void;
}

/** What the admin endpoints read and do: the main thread's configuration, every thread's stats, the server state. */
function adminContext(s: AdminSources): AdminContext {
  const { o, threads, state, started } = s;
  const { clusters, listeners, secrets } = threads.main;
  const node = envoyNode(o.node);
  return {
    stats: () => threads.stats(),
    resetCounters: () => threads.resetCounters(),
    hostStats: () => threads.hostStats(),
    clusters: () => [...clusters.active.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    listeners: (): ListenerStatus[] => [
      ...listeners.staticListeners.map((l) => ({ name: l.name, address: l.address, port: l.port })),
      ...[...listeners.active.values()].map((l) => ({ name: l.spec.name, address: l.spec.address, port: l.spec.port })),
    ],
    configDump: (includeEds) =>
      assembleConfigDump(
        {
          node,
          started,
          admin: { host: s.adminHost, port: s.ports.admin },
          clusters,
          listeners,
          secrets,
          version: s.xdsVersion,
          ...(o.statsInclusion ? { statsPatterns: o.statsInclusion.patterns } : {}),
        },
        includeEds,
      ),
    state: () => state.name,
    serverInfo: () => {
      const uptime = `${Math.floor((Date.now() - started) / 1000)}s`;
      return {
        version: 'meshgate/0.1.0/Clean/RELEASE/Node.js',
        state: state.name,
        hot_restart_version: 'disabled',
        command_line_options: {
          concurrency: s.concurrency,
          mode: 'Serve',
          drain_time: `${s.drainMs / 1000}s`,
          drain_strategy: 'Immediate',
          parent_shutdown_time: '60s',
          disable_hot_restart: true,
          service_cluster: o.node.cluster,
          service_node: o.node.id,
          local_address_ip_version: 'v4',
          file_flush_interval: '1s',
        },
        node,
        uptime_current_epoch: uptime,
        uptime_all_epochs: uptime,
      };
    },
    healthcheckFail: () => state.healthcheckFail(),
    healthcheckOk: () => state.healthcheckOk(),
    drainListeners: (graceful) => void threads.drain(graceful ? s.drainMs : 0),
    quit: s.quit,
  };
}

export async function startProxy(o: ProxyOptions): Promise<Proxy> {
  const log = o.log.child({ component: 'proxy' });
  const started = Date.now();
  const drainMs = (o.drainSeconds ?? 5) * 1000;
  const concurrency = Math.max(1, o.concurrency ?? 1);
  const threads = new ProxyThreads({
    log: o.log,
    concurrency,
    serveOnMainThread: o.serveOnMainThread === true,
    listenHost: o.listenHost,
    drainMs,
    accessLog: o.accessLog,
    dnsServer: o.dnsServer,
    localAddress: localIpv4(),
    node: { ...localNodeFromMetadata(o.node.metadata), id: o.node.id, cluster: o.node.cluster },
  });
  const { store, clusters, listeners } = threads.main;
  const flushTimer = setInterval(
    () => void threads.flushHistograms().catch((e: unknown) => log.warn({ err: (e as Error).message }, 'stats flush failed')),
    o.statsFlushIntervalMs ?? 5000,
  );
  flushTimer.unref();
  const state = new ServerState({ store, log, started, warm: () => clusters.warming.size === 0 && listeners.warmingCount === 0 });
  clusters.onWarm = () => state.checkInit();
  listeners.onWarm = () => state.checkInit();
  registerServerStats(store, state, { started, concurrency, activeConnections: () => listeners.activeConnections });

  // Admin handlers may run before the ADS client and the proxy object exist.
  const late: { ads?: AdsClient; proxy?: Proxy } = {};
  const adminHost = o.adminHost ?? '127.0.0.1';
  const bindHost = o.listenHost ?? '0.0.0.0';
  const own = new OwnServers();
  const admin = adminContext({
    o,
    threads,
    state,
    started,
    concurrency,
    drainMs,
    adminHost,
    ports: own.ports,
    xdsVersion: (typeUrl) => late.ads?.types.get(typeUrl)?.version ?? '',
    quit: () => void late.proxy?.close().then(() => (o.onQuit ? o.onQuit() : process.exit(0))),
  });
  try {
    await own.bind('admin', adminHost, o.adminPort, () => startAdminServer(admin, adminHost, o.adminPort));
    await own.bind('status', bindHost, o.statusPort, () => startStatusServer(bindHost, o.statusPort, () => state.isReady()));
    const exported = o.statsInclusion ? statsFilter(o.statsInclusion.matches) : undefined;
    const metricsStats = exported ? async () => exported(await threads.stats()) : () => threads.stats();
    await own.bind('metrics', bindHost, o.metricsPort, () => startMetricsServer(bindHost, o.metricsPort, metricsStats));
  } catch (e) {
    clearInterval(flushTimer);
    await threads.close();
    throw e;
  }
  const ports = { ...own.ports };
  addIstioBootstrap(threads.main, ports, o.xdsAddress);

  const client = new AdsClient({
    address: o.xdsAddress,
    node: { id: o.node.id, cluster: o.node.cluster, metadata: o.node.metadata },
    log: o.log.child({ component: 'xds' }),
    store,
    handler: {
      apply: async (...update) => {
        const { errors, subscriptions } = await threads.apply(...update);
        // The resource names to ask the control plane for.
        if (subscriptions.eds) client.setNames(ENDPOINT_TYPE, subscriptions.eds);
        if (subscriptions.rds) client.setNames(ROUTE_TYPE, subscriptions.rds);
        if (subscriptions.sds) client.setNames(SECRET_TYPE, subscriptions.sds);
        state.applied(update[0]);
        return errors;
      },
    },
  });
  late.ads = client;
  state.initializing();
  client.start();
  log.info({ xds: o.xdsAddress, node: o.node.id, admin: ports.admin, status: ports.status, metrics: ports.metrics }, 'proxy started');

  let closed = false;
  const proxy: Proxy = {
    ready: state.ready,
    ports,
    drain: async () => {
      state.draining();
      await threads.drain(drainMs);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(flushTimer);
      client.close();
      await threads.close();
      await own.close();
    },
  };
  late.proxy = proxy;
  return proxy;
}
