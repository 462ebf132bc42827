// One worker's data plane: its stats store, clusters (with their own upstream pools), certificates and
// listeners, and how an xDS update of each type is applied to them. Every worker thread runs one; the main
// thread runs one too, which owns the configuration state admin shows and, as in Envoy, serves no traffic
// (worker -1: its listeners are never bound). In-process tests may let the main thread serve as worker 0.
import type { Logger } from 'pino';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../xds/type-urls.ts';
import { fileAccessLogSinks, fileAccessLogger, type AccessLogger, type AccessLogSinks } from './access-log/text-format.ts';
import type { ProxyRuntime } from './http/connection-manager.ts';
import { ListenerManager, type RefusedBinds } from './listener/listener-manager.ts';
import { StatsStore } from './stats/store.ts';
import type { LocalNode } from './stats/istio-metrics.ts';
import { referencedSecretNames, SecretStore } from './tls/secrets.ts';
import { setDnsServers } from './upstream/dns.ts';
import { ClusterManager } from './upstream/cluster-manager.ts';
import type { WorkerSharing } from './upstream/worker-sharing.ts';
import type { XdsUpdateArgs } from './xds/ads-client.ts';
import type { envoy } from '../xds/envoy.ts';

export interface DataPlaneOptions {
  log: Logger;
  /** Override every listener's bind address (tests). */
  listenHost: string | undefined;
  drainMs: number;
  /** Access log path or /dev/stdout, or a logger (a worker's, forwarding to the main thread); off when undefined. */
  accessLog: string | AccessLogger | undefined;
  /** Where the xDS-configured access loggers write (a worker's forward to the main thread); default: the files. */
  accessLogSinks?: AccessLogSinks;
  /** DNS server(s) for STRICT_DNS/LOGICAL_DNS clusters. */
  dnsServer: string | undefined;
  /** Envoy's own address for x-forwarded-for. */
  localAddress: string;
  /** Several workers bind each listener port (SO_REUSEPORT; the kernel spreads connections). */
  reusePort: boolean;
  /** Worker threads 0..N-1; the main thread -1 (binds nothing), or 0 when it serves (in-process tests). */
  worker: number;
  /** Several workers: outlier detection across them (upstream/outlier-detector.ts). */
  sharing?: WorkerSharing | undefined;
  /** The gateway's identity from its node metadata (Istio's stats). */
  node?: LocalNode | undefined;
}

/** What an applied update changed in the xDS subscriptions (resource names to ask for). */
export interface Subscriptions {
  eds?: string[];
  rds?: string[];
  sds?: string[];
}

/**
 * One type's resources as an update carries them: [type URL, the resources as that type's message, version]
 * (what the ADS client hands over; comparing the type URL narrows the resources).
 */
export type Update = XdsUpdateArgs;

export interface DataPlane {
  store: StatsStore;
  clusters: ClusterManager;
  listeners: ListenerManager;
  secrets: SecretStore;
  accessLog: AccessLogger | undefined;
  accessLogSinks: AccessLogSinks;
  /**
   * Applies one xDS update; returns the rejected resources' errors and the new subscriptions. LDS: listener
   * addresses in `refused` are not bound (the main thread found another process on them).
   */
  apply(update: Update, refused?: RefusedBinds): Promise<{ errors: string[]; subscriptions: Subscriptions }>;
  /** The accepted configuration as updates, clusters before endpoints, listeners before routes. */
  current(): Update[];
  close(): void;
}

export function createDataPlane(o: DataPlaneOptions): DataPlane {
  const store = new StatsStore();
  const clusters = new ClusterManager(store, o.log.child({ component: 'upstream' }));
  // Certificates: SDS over ADS (credentialName Secrets) and files (the pilot-agent's part).
  const secrets = new SecretStore(o.log.child({ component: 'sds' }));
  clusters.secrets = secrets;
  clusters.sharing = o.sharing;
  if (o.dnsServer !== undefined) setDnsServers(o.dnsServer);
  const accessLog: AccessLogger | undefined = typeof o.accessLog === 'string' ? fileAccessLogger(o.accessLog) : o.accessLog;
  // --access-log's file is shared with xDS loggers writing to the same path.
  const accessLogSinks =
    o.accessLogSinks ?? fileAccessLogSinks(accessLog && typeof o.accessLog === 'string' ? { path: o.accessLog, logger: accessLog } : undefined);
  const runtime: ProxyRuntime = {
    store,
    clusters,
    log: o.log.child({ component: 'http' }),
    accessLog,
    accessLogSinks,
    localAddress: o.localAddress,
    secrets,
    node: o.node,
  };
  const listeners = new ListenerManager({
    runtime,
    log: o.log.child({ component: 'listener' }),
    listenHost: o.listenHost,
    drainMs: o.drainMs,
    reusePort: o.reusePort,
    worker: o.worker,
  });

  // The SDS names the current listeners and clusters refer to (subscribed by name, as Envoy does).
  let ldsJson: envoy.config.listener.v3.Listener[] = [];
  let cdsJson: envoy.config.cluster.v3.Cluster[] = [];
  const versions = new Map<string, string>();
  const secretNames = (): string[] => {
    const names = referencedSecretNames([...ldsJson, ...cdsJson]);
    secrets.retain(names.ads, names.files);
    return names.ads;
  };

  return {
    store,
    clusters,
    listeners,
    secrets,
    accessLog,
    accessLogSinks,
    apply: async (update, refused) => {
      const [typeUrl, resources, version] = update;
      versions.set(typeUrl, version);
      switch (typeUrl) {
        case CLUSTER_TYPE: {
          const errors = clusters.applyCds(resources, version).errors;
          cdsJson = resources;
          return { errors, subscriptions: { eds: clusters.edsNames(), sds: secretNames() } };
        }
        case ENDPOINT_TYPE:
          return { errors: clusters.applyEds(resources).errors, subscriptions: {} };
        case LISTENER_TYPE: {
          const errors = (await listeners.applyLds(resources, version, refused)).errors;
          ldsJson = resources;
          return { errors, subscriptions: { rds: listeners.rdsNames(), sds: secretNames() } };
        }
        case SECRET_TYPE:
          return { errors: secrets.applySds(resources, version).errors, subscriptions: {} };
        case ROUTE_TYPE:
          return { errors: listeners.applyRds(resources, version).errors, subscriptions: {} };
        default:
          return { errors: [], subscriptions: {} };
      }
    },
    current: () => {
      const v = (t: string): string => versions.get(t) ?? '';
      const all: Update[] = [
        [CLUSTER_TYPE, [...clusters.dynamicActive(), ...clusters.warming.values()].map((c) => c.json), v(CLUSTER_TYPE)],
        [ENDPOINT_TYPE, clusters.assignmentResources(), v(ENDPOINT_TYPE)],
        [SECRET_TYPE, secrets.adsResources(), v(SECRET_TYPE)],
        [LISTENER_TYPE, [...listeners.active.values()].map((l) => l.json), v(LISTENER_TYPE)],
        [ROUTE_TYPE, [...listeners.routes.values()].flatMap((r) => (r.json ? [r.json] : [])), v(ROUTE_TYPE)],
      ];
      return all.filter(([typeUrl]) => versions.has(typeUrl));
    },
    close: () => {
      listeners.close();
      clusters.close();
      accessLogSinks.close();
      accessLog?.close();
      secrets.close();
    },
  };
}
