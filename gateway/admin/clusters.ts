// /clusters in Envoy's text and JSON forms (source/server/admin/clusters_handler.cc: writeClustersAsText and
// writeClustersAsJson). `istioctl proxy-config endpoints` reads the JSON form.
import type { envoy } from '../../xds/envoy.ts';
import { Cluster } from '../upstream/cluster.ts';
import type { Host, Locality } from '../upstream/host.ts';
import { HEALTH_DEGRADED, HEALTH_DRAINING, HEALTH_TIMEOUT, HEALTH_UNHEALTHY } from '../upstream/host.ts';

type HostStatus = envoy.admin.v3.HostStatus;
type SimpleMetric = envoy.admin.v3.SimpleMetric;

/** Host stat names in the order Envoy's text form prints them (sorted). */
const HOST_STAT_NAMES = ['cx_active', 'cx_connect_fail', 'cx_total', 'rq_active', 'rq_error', 'rq_success', 'rq_timeout', 'rq_total'] as const;

/**
 * The JSON form lists a host's counters, then its gauges, each in the order of Envoy's ALL_HOST_STATS macro
 * (envoy/upstream/host_description.h): indices into HOST_STAT_NAMES, with the metric type.
 */
const JSON_STATS: readonly [number, SimpleMetric['type']][] = [
  [1, 'COUNTER'], // cx_connect_fail
  [2, 'COUNTER'], // cx_total
  [4, 'COUNTER'], // rq_error
  [5, 'COUNTER'], // rq_success
  [6, 'COUNTER'], // rq_timeout
  [7, 'COUNTER'], // rq_total
  [0, 'GAUGE'], // cx_active
  [3, 'GAUGE'], // rq_active
];

/** A host's own values, in HOST_STAT_NAMES order. */
export function hostStatValues(h: Host): number[] {
  return [h.cxActive, h.cxConnectFail, h.cxTotal, h.activeRq, h.rqError, h.rqSuccess, h.rqTimeout, h.rqTotal];
}

/** Other workers' host stats by `<cluster>::<host key>`, added to the main thread's (HOST_STAT_NAMES order). */
export type HostStatTotals = Map<string, number[]>;

/**
 * A host as /clusters shows it. Besides the load-balanced hosts, the pipe (Unix socket) endpoints of the
 * bootstrap's sds-grpc and xds-grpc clusters: Envoy makes them hosts like any other, and `istioctl pc endpoints`
 * lists them (unix://...). This proxy reaches its control plane on its own, so they never carry traffic.
 */
interface AdminHost {
  address: envoy.config.core.v3.Address;
  /** As Envoy's text form prints the address (Address::asString()): `ip:port`, `[ip6]:port`, or the pipe's path. */
  key: string;
  /** HOST_STAT_NAMES order, summed over the workers. */
  stats: number[];
  /** Cluster.healthFlags: the text form's health_flags. */
  flags: string;
  edsHealth: envoy.config.core.v3.HealthStatus;
  failedOutlierCheck: boolean;
  weight: number;
  hostname: string;
  priority: number;
  locality: Locality;
}

/**
 * HostHealthStatus.eds_health_status as Envoy's admin writes it from the host's flags (setHealthFlag in
 * clusters_handler.cc): FAILED_EDS_HEALTH (UNHEALTHY, TIMEOUT) is UNHEALTHY, then DEGRADED, DRAINING from its
 * own flag, and HEALTHY otherwise (UNKNOWN endpoints included).
 */
function edsHealthStatus(h: Host): envoy.config.core.v3.HealthStatus {
  switch (h.health) {
    case HEALTH_UNHEALTHY:
    case HEALTH_TIMEOUT:
      return 'UNHEALTHY';
    case HEALTH_DEGRADED:
      return 'DEGRADED';
    case HEALTH_DRAINING:
      return 'DRAINING';
    default:
      return 'HEALTHY';
  }
}

function loadBalanced(c: Cluster, h: Host, others: HostStatTotals | undefined): AdminHost {
  const own = hostStatValues(h);
  const extra = others?.get(`${c.name}::${h.key}`);
  return {
    address: { socket_address: { address: h.address, port_value: h.port } },
    key: h.key,
    stats: own.map((v, i) => v + (extra?.[i] ?? 0)),
    flags: Cluster.healthFlags(h),
    edsHealth: edsHealthStatus(h),
    failedOutlierCheck: h.outlierEjected,
    weight: h.weight,
    hostname: h.hostname,
    priority: h.priority,
    locality: h.locality,
  };
}

/** The pipe endpoints of a static cluster's load_assignment, which the cluster manager leaves out of its hosts. */
function pipeHosts(c: Cluster): AdminHost[] {
  if (c.hosts.length > 0 || c.spec.loadAssignment !== undefined) return [];
  const out: AdminHost[] = [];
  for (const l of c.json.load_assignment?.endpoints ?? []) {
    for (const e of l.lb_endpoints ?? []) {
      const path = e.endpoint?.address?.pipe?.path;
      if (path === undefined) continue;
      out.push({
        address: { pipe: { path } },
        key: path,
        stats: HOST_STAT_NAMES.map(() => 0),
        flags: 'healthy',
        edsHealth: 'HEALTHY',
        failedOutlierCheck: false,
        weight: e.load_balancing_weight ?? 1,
        hostname: '',
        priority: l.priority ?? 0,
        locality: { region: l.locality?.region ?? '', zone: l.locality?.zone ?? '', sub_zone: l.locality?.sub_zone ?? '' },
      });
    }
  }
  return out;
}

function adminHosts(c: Cluster, others: HostStatTotals | undefined): AdminHost[] {
  return [...c.hosts.map((h) => loadBalanced(c, h, others)), ...pipeHosts(c)];
}

export function renderClustersText(clusters: Cluster[], others?: HostStatTotals): string {
  let out = '';
  for (const c of clusters) {
    const n = c.name;
    out += `${n}::observability_name::${c.spec.observabilityName}\n`;
    if (c.outlier) {
      // Success-rate ejection is not computed (Istio disables it): Envoy prints -1 when unknown.
      for (const k of [
        'success_rate_average',
        'success_rate_ejection_threshold',
        'local_origin_success_rate_average',
        'local_origin_success_rate_ejection_threshold',
      ])
        out += `${n}::outlier::${k}::-1\n`;
    }
    for (const [prio, t] of [
      ['default_priority', c.spec.thresholds],
      ['high_priority', c.spec.highThresholds],
    ] as const) {
      out += `${n}::${prio}::max_connections::${t.maxConnections}\n`;
      out += `${n}::${prio}::max_pending_requests::${t.maxPendingRequests}\n`;
      out += `${n}::${prio}::max_requests::${t.maxRequests}\n`;
      out += `${n}::${prio}::max_retries::${t.maxRetries}\n`;
    }
    out += `${n}::added_via_api::${c.addedViaApi}\n`;
    if (c.spec.edsServiceName !== undefined && c.spec.edsServiceName !== '') out += `${n}::eds_service_name::${c.spec.edsServiceName}\n`;
    for (const h of adminHosts(c, others)) {
      const p = `${n}::${h.key}::`;
      HOST_STAT_NAMES.forEach((k, i) => (out += `${p}${k}::${h.stats[i] ?? 0}\n`));
      out += `${p}hostname::${h.hostname}\n`;
      out += `${p}health_flags::${h.flags}\n`;
      out += `${p}weight::${h.weight}\n`;
      out += `${p}region::${h.locality.region}\n`;
      out += `${p}zone::${h.locality.zone}\n`;
      out += `${p}sub_zone::${h.locality.sub_zone}\n`;
      out += `${p}canary::false\n`;
      out += `${p}priority::${h.priority}\n`;
      out += `${p}success_rate::-1\n`;
      out += `${p}local_origin_success_rate::-1\n`;
    }
  }
  return out;
}

/**
 * One host as writeClustersAsJson fills envoy.admin.v3.HostStatus, printed as protobuf's JSON printer does:
 * fields in field-number order, defaults (0, false, '') left out, uint64 values as strings, and the message
 * fields Envoy always sets (address, health_status, locality) present even when empty. No success_rate: it
 * is only set when outlier detection has computed one, which this proxy never does (Istio turns it off).
 */
function hostStatusJson(h: AdminHost): HostStatus {
  const hs: HostStatus = {
    address: h.address,
    stats: JSON_STATS.map(([i, type]): SimpleMetric => {
      const v = h.stats[i] ?? 0;
      return { ...(type === 'GAUGE' ? { type } : {}), ...(v !== 0 ? { value: String(v) } : {}), name: HOST_STAT_NAMES[i] };
    }),
    health_status: { ...(h.failedOutlierCheck ? { failed_outlier_check: true } : {}), eds_health_status: h.edsHealth },
  };
  if (h.weight !== 0) hs.weight = h.weight;
  if (h.hostname !== '') hs.hostname = h.hostname;
  if (h.priority !== 0) hs.priority = h.priority;
  const { region, zone, sub_zone } = h.locality;
  hs.locality = { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(sub_zone ? { sub_zone } : {}) };
  return hs;
}

/** envoy.admin.v3.Clusters, pretty-printed as Envoy prints it (1-space indentation), field by field in ClusterStatus order. */
export function renderClustersJson(clusters: Cluster[], others?: HostStatTotals): string {
  const thresholds = (t: Cluster['spec']['thresholds']) => ({
    max_connections: t.maxConnections,
    max_pending_requests: t.maxPendingRequests,
    max_requests: t.maxRequests,
    max_retries: t.maxRetries,
  });
  const statuses = clusters.map((c): envoy.admin.v3.ClusterStatus => {
    const hosts = adminHosts(c, others);
    return {
      name: c.name,
      ...(c.addedViaApi ? { added_via_api: true } : {}),
      ...(hosts.length > 0 ? { host_statuses: hosts.map(hostStatusJson) } : {}),
      // DEFAULT is the enum's zero value: protobuf leaves it out.
      circuit_breakers: { thresholds: [thresholds(c.spec.thresholds), { priority: 'HIGH', ...thresholds(c.spec.highThresholds) }] },
      ...(c.spec.observabilityName ? { observability_name: c.spec.observabilityName } : {}),
      ...(c.spec.edsServiceName ? { eds_service_name: c.spec.edsServiceName } : {}),
    };
  });
  const out: envoy.admin.v3.Clusters = statuses.length > 0 ? { cluster_statuses: statuses } : {};
  return JSON.stringify(out, null, 1) + '\n';
}
