// envoy.filters.network.tcp_proxy: the network filter of TCP, TLS-passthrough and terminated-TLS gateway
// chains. Picks the cluster (single or weighted), a host from the cluster's load balancer, connects (with the
// cluster's upstream TLS when it has one) and pipes bytes both ways with backpressure. No host or a failed
// connect closes the downstream connection (Envoy: UH / UF in the access log, no bytes sent). Stats under
// `tcp.<stat_prefix>.`.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { durationMs, type envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { StatScope, type StatsStore } from '../stats/store.ts';
import { CX } from '../upstream/resource-manager.ts';
import { xxHash64 } from '../upstream/xxhash64.ts';
import { plainIp } from '../http/request-headers.ts';
import { NC, UF, UH, formatResponseFlags } from '../http/response-flags.ts';
import type { Destination, IstioMetrics } from '../stats/istio-metrics.ts';
import { celAttributes } from '../access-log/cel-filter.ts';
import { compileAccessLogs, type CompiledAccessLog } from '../access-log/access-log-config.ts';
import { connectionEntry, connectionLog, type ConnectionLog } from '../access-log/connection-entry.ts';
import type { AccessLogSinks } from '../access-log/text-format.ts';

export interface TcpProxySpec {
  statPrefix: string;
  clusters: { name: string; weight: number }[];
  /** Envoy default 1 h; 0 disables. */
  idleTimeoutMs: number;
  maxConnectionDurationMs: number;
  /** hash_policy source_ip: the load balancer's hash is the client address's (consistent hashing clusters). */
  hashSourceIp: boolean;
  /** access_log: offered each connection when it closes. */
  accessLogs: readonly CompiledAccessLog[];
}

const checkTcpProxy = fieldTable('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', {
  stat_prefix: true,
  cluster: true,
  weighted_clusters: true,
  idle_timeout: true,
  max_downstream_connection_duration: true,
  hash_policy: true,
  max_connect_attempts: 'a connection makes one connect attempt, to one host (Envoy default 1; Istio does not set it)',
  // access_log_options (periodic flushes) is NACKed: a connection's line is written when it closes.
  access_log: true,
});
const checkWeightedCluster = fieldTable('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster', { clusters: true });
const checkClusterWeight = fieldTable('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight', { name: true, weight: true });
const checkHashPolicy = fieldTable('envoy.type.v3.HashPolicy', { source_ip: true });

export function parseTcpProxy(cfg: envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, where: string): TcpProxySpec {
  checkTcpProxy(cfg, where);
  const accessLogs = compileAccessLogs(cfg.access_log, `${where}.access_log`);
  const statPrefix = cfg.stat_prefix ?? '';
  if (!statPrefix) throw new ConfigError(`${where}: tcp_proxy needs a stat_prefix`);
  let clusters: { name: string; weight: number }[];
  if (cfg.cluster !== undefined) clusters = [{ name: cfg.cluster, weight: 1 }];
  else {
    const wc = cfg.weighted_clusters ?? {};
    checkWeightedCluster(wc, `${where}.weighted_clusters`);
    clusters = (wc.clusters ?? []).map((c, i) => {
      checkClusterWeight(c, `${where}.weighted_clusters.clusters[${i}]`);
      return { name: c.name ?? '', weight: c.weight ?? 0 };
    });
    if (clusters.length === 0) throw new ConfigError(`${where}: tcp_proxy needs a cluster or weighted_clusters`);
  }
  let hashSourceIp = false;
  for (const [i, h] of (cfg.hash_policy ?? []).entries()) {
    checkHashPolicy(h, `${where}.hash_policy[${i}]`);
    if (h.source_ip === undefined) throw new ConfigError(`${where}.hash_policy[${i}]: a hash policy needs source_ip`);
    hashSourceIp = true;
  }
  return {
    statPrefix,
    clusters,
    idleTimeoutMs: durationMs(cfg.idle_timeout, 3_600_000),
    maxConnectionDurationMs: durationMs(cfg.max_downstream_connection_duration, 0),
    hashSourceIp,
    accessLogs,
  };
}

/** Envoy's tcp_proxy SourceIpHashMethod: xxHash64 of the client's IP address as text. */
function sourceIpHash(down: Duplex): bigint | undefined {
  const ip = (down as Partial<Socket>).remoteAddress;
  return ip ? xxHash64(plainIp(ip)) : undefined;
}

interface TcpDestination extends Destination {
  /** The upstream connection is up: Istio's upstream metadata exchange has run, the filter reports from then on. */
  connected: boolean;
}

/**
 * istio_stats on a TCP connection, as a gateway reports it: every tcp_reporting_duration once the upstream
 * connection is up (the upstream metadata exchange then settled that there is no peer metadata), and when the
 * connection closes: `opened` once with the tags fixed then, the bytes since the last report, `closed` at the end.
 */
function reportIstioTcp(m: IstioMetrics, down: Duplex, cl: ConnectionLog, dest: TcpDestination): void {
  let h: ReturnType<IstioMetrics['tcpHandles']> | undefined;
  let sent = 0;
  let received = 0;
  const report = (): NonNullable<typeof h> => {
    if (!h) {
      h = m.tcpHandles(dest, formatResponseFlags(cl.responseFlags), { attributes: () => celAttributes(connectionEntry(cl)) });
      m.add(h.opened, 1);
    }
    m.add(h.sent, cl.bytesSent - sent);
    m.add(h.received, cl.bytesReceived - received);
    sent = cl.bytesSent;
    received = cl.bytesReceived;
    return h;
  };
  const timer = setInterval(() => {
    if (dest.connected) report();
  }, m.config.tcpReportingMs);
  timer.unref();
  down.once('close', () => {
    clearInterval(timer);
    m.add(report().closed, 1);
  });
}

export class TcpProxy {
  readonly spec: TcpProxySpec;
  private readonly scope: StatScope;
  private readonly store: StatsStore;
  private readonly clusters: ClusterManager;
  private readonly log: Logger;
  private readonly sinks: AccessLogSinks | undefined;
  private readonly s: Record<string, number>;
  private readonly total: number;

  /** Istio's stats filter of the chain (istio_tcp_* metrics), when it has one. */
  private readonly istio: IstioMetrics | undefined;

  constructor(
    spec: TcpProxySpec,
    o: { store: StatsStore; clusters: ClusterManager; log: Logger; accessLogSinks?: AccessLogSinks; istio?: IstioMetrics | undefined },
  ) {
    this.spec = spec;
    this.istio = o.istio;
    this.sinks = o.accessLogSinks;
    this.store = o.store;
    this.clusters = o.clusters;
    this.log = o.log;
    this.scope = new StatScope(o.store, `tcp.${spec.statPrefix}.`);
    this.s = {};
    for (const k of [
      'downstream_cx_total',
      'downstream_cx_no_route',
      'downstream_cx_rx_bytes_total',
      'downstream_cx_tx_bytes_total',
      'idle_timeout',
      'upstream_flush_total',
      'max_downstream_connection_duration',
    ])
      this.s[k] = this.scope.counter(k);
    this.s.downstream_cx_active = this.scope.gauge('downstream_cx_active');
    this.total = spec.clusters.reduce((a, c) => a + c.weight, 0);
  }

  private pickCluster(): string {
    const list = this.spec.clusters;
    if (list.length === 1 || this.total <= 0) return list[0]?.name ?? '';
    let r = Math.random() * this.total;
    for (const c of list) {
      r -= c.weight;
      if (r < 0) return c.name;
    }
    return list[list.length - 1]?.name ?? '';
  }

  /**
   * Proxies one downstream connection (already past TLS termination, or raw for passthrough); `sni` and the
   * accepted `socket` (its addresses) are for the access log.
   */
  handle(down: Duplex, sni?: string, socket?: Socket): void {
    const st = this.store;
    const s = this.s;
    const inc = (k: string, by = 1): void => st.inc(s[k] as number, by);
    inc('downstream_cx_total');
    inc('downstream_cx_active');
    down.once('close', () => st.dec(s.downstream_cx_active as number));
    const logs = this.spec.accessLogs;
    const sinks = this.sinks;
    const cl = (logs.length && sinks) || this.istio ? connectionLog(socket ?? down, sni) : undefined;
    const dest: TcpDestination = { clusterName: '', service: undefined, workload: '', routeName: '', authority: '', connected: false };
    if (this.istio && cl) reportIstioTcp(this.istio, down, cl, dest);
    if (cl && sinks)
      down.once('close', () => {
        const e = connectionEntry(cl);
        for (const l of logs) if (!l.filter || l.filter(e)) sinks.write(l.path, l.format(e));
      });
    const clusterName = this.pickCluster();
    const cluster = this.clusters.get(clusterName);
    if (!cluster) {
      if (cl) cl.responseFlags |= NC;
      inc('downstream_cx_no_route');
      this.log.debug({ cluster: clusterName }, 'tcp_proxy: cluster not found; closing');
      down.destroy();
      return;
    }
    if (cl) cl.upstreamCluster = clusterName;
    dest.clusterName = clusterName;
    dest.service = cluster.spec.istioService;
    const host = cluster.chooseHost(this.spec.hashSourceIp ? sourceIpHash(down) : undefined);
    if (!host) {
      if (cl) cl.responseFlags |= UH;
      st.inc(cluster.stats.upstream_cx_none_healthy);
      down.destroy();
      return;
    }
    down.pause();
    const cs = cluster.stats;
    if (cl) cl.upstreamHost = host.key;
    dest.workload = host.workload;
    const onUp = (err: Error | null, up: Socket | null): void => {
      if (err || !up) {
        if (cl) cl.responseFlags |= UF;
        st.inc(cs.upstream_cx_total);
        st.inc(cs.upstream_cx_connect_fail);
        if ((err as { code?: string } | null)?.code === 'UND_ERR_CONNECT_TIMEOUT') st.inc(cs.upstream_cx_connect_timeout);
        this.log.debug({ cluster: clusterName, host: host.key, err: err?.message }, 'tcp_proxy: upstream connect failed; closing');
        down.destroy();
        return;
      }
      st.inc(cs.upstream_cx_total);
      st.inc(cs.upstream_cx_active);
      dest.connected = true;
      cluster.resources.inc(CX);
      up.once('close', () => {
        st.dec(cs.upstream_cx_active);
        st.inc(cs.upstream_cx_destroy);
        cluster.resources.dec(CX);
      });
      if (cl) cl.upstreamLocalAddress = up.localAddress ? `${plainIp(up.localAddress)}:${up.localPort ?? 0}` : '';
      this.pipe(down, up, cl);
    };
    cluster.connectRaw(host, onUp);
  }

  private pipe(down: Duplex, up: Socket, cl: ConnectionLog | undefined): void {
    const st = this.store;
    const s = this.s;
    let idle: NodeJS.Timeout | undefined;
    const close = (): void => {
      if (idle) clearTimeout(idle);
      if (maxTimer) clearTimeout(maxTimer);
      down.destroy();
      up.destroy();
    };
    const touch = (): void => {
      if (this.spec.idleTimeoutMs <= 0) return;
      if (idle) idle.refresh();
      else
        idle = setTimeout(() => {
          st.inc(s.idle_timeout as number);
          close();
        }, this.spec.idleTimeoutMs);
    };
    const maxTimer =
      this.spec.maxConnectionDurationMs > 0
        ? setTimeout(() => {
            st.inc(s.max_downstream_connection_duration as number);
            close();
          }, this.spec.maxConnectionDurationMs)
        : undefined;
    touch();
    down.on('data', (b: Buffer) => {
      st.inc(s.downstream_cx_rx_bytes_total as number, b.length);
      if (cl) cl.bytesReceived += b.length;
      touch();
      if (!up.write(b)) down.pause();
    });
    up.on('drain', () => down.resume());
    up.on('data', (b: Buffer) => {
      st.inc(s.downstream_cx_tx_bytes_total as number, b.length);
      if (cl) cl.bytesSent += b.length;
      touch();
      if (!down.write(b)) up.pause();
    });
    down.on('drain', () => up.resume());
    // Half-close is propagated as Envoy does (FIN forwarded); either side erroring closes both.
    down.on('end', () => up.end());
    up.on('end', () => down.end());
    down.on('error', close);
    up.on('error', close);
    down.on('close', () => up.destroy());
    up.on('close', () => {
      if (idle) clearTimeout(idle);
      if (maxTimer) clearTimeout(maxTimer);
      down.destroy();
    });
    down.resume();
  }

  release(): void {
    this.scope.releaseAll();
  }
}
