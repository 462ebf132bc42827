// /clusters in Envoy's text and JSON forms (source/server/admin/clusters_chunk_processor.cc).
import { Cluster } from '../upstream/cluster.ts';
import type { Host } from '../upstream/host.ts';
import { HEALTH_DEGRADED, HEALTH_DRAINING, HEALTH_TIMEOUT, HEALTH_UNHEALTHY } from '../upstream/host.ts';

/** Host stat names in the order Envoy prints them (sorted). */
const HOST_STAT_NAMES = ['cx_active', 'cx_connect_fail', 'cx_total', 'rq_active', 'rq_error', 'rq_success', 'rq_timeout', 'rq_total'] as const;

/** A host's own values, in HOST_STAT_NAMES order. */
export function hostStatValues(h: Host): number[] {
  return [h.cxActive, h.cxConnectFail, h.cxTotal, h.activeRq, h.rqError, h.rqSuccess, h.rqTimeout, h.rqTotal];
}

/** Other workers' host stats by `<cluster>::<host key>`, added to the main thread's (HOST_STAT_NAMES order). */
export type HostStatTotals = Map<string, number[]>;

function hostCounters(c: Cluster, h: Host, others: HostStatTotals | undefined): [string, number][] {
  const own = hostStatValues(h);
  const extra = others?.get(`${c.name}::${h.key}`);
  return HOST_STAT_NAMES.map((n, i) => [n, (own[i] ?? 0) + (extra?.[i] ?? 0)]);
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
    for (const h of c.hosts) {
      const p = `${n}::${h.key}::`;
      for (const [k, v] of hostCounters(c, h, others)) out += `${p}${k}::${v}\n`;
      out += `${p}hostname::${h.hostname}\n`;
      out += `${p}health_flags::${Cluster.healthFlags(h)}\n`;
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
 * HostHealthStatus.eds_health_status as Envoy's admin writes it from the host's flags (setHealthFlag in
 * source/server/admin/clusters_handler.cc): FAILED_EDS_HEALTH (UNHEALTHY, TIMEOUT) is UNHEALTHY, then DEGRADED,
 * DRAINING from its own flag, and HEALTHY otherwise (UNKNOWN endpoints included).
 */
function edsHealthStatus(h: Host): string {
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

export function renderClustersJson(clusters: Cluster[], others?: HostStatTotals): string {
  const statuses = clusters.map((c) => {
    const t = c.spec.thresholds;
    const ht = c.spec.highThresholds;
    const o: Record<string, unknown> = {
      name: c.name,
      observability_name: c.spec.observabilityName,
    };
    if (c.addedViaApi) o.added_via_api = true;
    o.circuit_breakers = {
      thresholds: [
        { max_connections: t.maxConnections, max_pending_requests: t.maxPendingRequests, max_requests: t.maxRequests, max_retries: t.maxRetries },
        {
          priority: 'HIGH',
          max_connections: ht.maxConnections,
          max_pending_requests: ht.maxPendingRequests,
          max_requests: ht.maxRequests,
          max_retries: ht.maxRetries,
        },
      ],
    };
    if (c.spec.edsServiceName) o.eds_service_name = c.spec.edsServiceName;
    if (c.hosts.length > 0) {
      o.host_statuses = c.hosts.map((h) => {
        const hs: Record<string, unknown> = {
          address: { socket_address: { address: h.address, port_value: h.port } },
          stats: hostCounters(c, h, others).map(([name, value]) => {
            const s: Record<string, unknown> = { name };
            if (value !== 0) s.value = String(value);
            if (name === 'cx_active' || name === 'rq_active') s.type = 'GAUGE';
            return s;
          }),
          // HostHealthStatus in field order: failed_outlier_check (2) before eds_health_status (3).
          health_status: {
            ...(h.outlierEjected ? { failed_outlier_check: true } : {}),
            eds_health_status: edsHealthStatus(h),
          },
          weight: h.weight,
        };
        if (h.hostname) hs.hostname = h.hostname;
        if (h.locality.region || h.locality.zone || h.locality.sub_zone) hs.locality = h.locality;
        if (h.priority) hs.priority = h.priority;
        return hs;
      });
    }
    return o;
  });
  return JSON.stringify({ cluster_statuses: statuses }, null, 1) + '\n';
}
