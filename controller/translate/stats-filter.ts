// Istio's standard metrics on a gateway (pilot/pkg/model/telemetry.go generateStatsConfig): when a metrics
// provider of the Prometheus kind applies (the mesh's defaultProviders.metrics, which istiod's chart sets to
// `[prometheus]`), every HCM gets the `istio.stats` HTTP filter just before the router, and every TCP chain
// the `istio.stats` network filter just before tcp_proxy, both with a stats.PluginConfig. A gateway's listener
// class never falls back to the Host header for destination_service (disable_host_header_fallback); Telemetry
// API overrides become `metrics` entries, its reportingInterval `tcp_reporting_duration`.
import type { Duration, envoy, stats } from '../../xds/envoy.ts';
import { typedAny } from '../../xds/envoy.ts';
import { ISTIO_STATS_TYPE } from '../../xds/type-urls.ts';
import type { ExtensionProvider } from '../model/mesh-config.ts';
import type { MetricsConfig } from '../model/telemetry.ts';

const STATS_FILTER = 'istio.stats';

/** One Telemetry API metrics override (Telemetry.metrics[].overrides[]), as istiod keeps it after merging. */
interface MetricOverride {
  /** The metric's enum name (REQUEST_COUNT, ...), or ALL_METRICS; a custom name is passed on as written. */
  name: string;
  disabled: boolean;
  tags: readonly { name: string; remove: boolean; value: string }[];
}

/** What decides the stats filters: whether they are on, and the Telemetry API's overrides. */
export interface MetricsSettings {
  enabled: boolean;
  overrides: readonly MetricOverride[];
  /** Telemetry.metrics[].reportingInterval, as a proto3 JSON duration (`15s`). */
  reportingInterval?: Duration;
}

/** metricToPrometheusMetric: the Telemetry API's metric names as the stats filter spells them. */
const PROMETHEUS_NAME: Readonly<Record<string, string>> = {
  REQUEST_COUNT: 'requests_total',
  REQUEST_DURATION: 'request_duration_milliseconds',
  REQUEST_SIZE: 'request_bytes',
  RESPONSE_SIZE: 'response_bytes',
  TCP_OPENED_CONNECTIONS: 'tcp_connections_opened_total',
  TCP_CLOSED_CONNECTIONS: 'tcp_connections_closed_total',
  TCP_SENT_BYTES: 'tcp_sent_bytes_total',
  TCP_RECEIVED_BYTES: 'tcp_received_bytes_total',
  GRPC_REQUEST_MESSAGES: 'request_messages_total',
  GRPC_RESPONSE_MESSAGES: 'response_messages_total',
};

/**
 * The stats filter settings from the Telemetry API's resolved metrics (model/telemetry.ts, the mesh's
 * defaultProviders.metrics included): the first provider in scope, by name, that is a Prometheus extension provider
 * and whose client side (a gateway's) is not disabled as a whole.
 */
export function metricsSettings(metrics: ReadonlyMap<string, MetricsConfig>, providers: readonly ExtensionProvider[]): MetricsSettings {
  for (const name of [...metrics.keys()].sort()) {
    const p = providers.find((e) => e.name === name);
    const cfg = metrics.get(name);
    if (!cfg || p?.kind !== 'other' || p.provider !== 'prometheus' || cfg.client.disabled) continue;
    return { enabled: true, overrides: cfg.client.overrides, ...(cfg.reportingInterval ? { reportingInterval: cfg.reportingInterval as Duration } : {}) };
  }
  return { enabled: false, overrides: [] };
}

function pluginConfig(s: MetricsSettings): stats.PluginConfig {
  const metrics = s.overrides.map((o) => {
    const m: stats.MetricConfig = {};
    const dimensions: Record<string, string> = {};
    const remove: string[] = [];
    for (const t of o.tags) {
      if (t.remove) remove.push(t.name);
      else dimensions[t.name] = t.value;
    }
    if (Object.keys(dimensions).length) m.dimensions = dimensions;
    // ALL_METRICS is no metric name: the override applies to every metric.
    const name = PROMETHEUS_NAME[o.name] ?? (o.name === 'ALL_METRICS' ? '' : o.name);
    if (name) m.name = name;
    if (remove.length) m.tags_to_remove = remove;
    if (o.disabled) m.drop = true;
    return m;
  });
  return {
    disable_host_header_fallback: true,
    ...(s.reportingInterval ? { tcp_reporting_duration: s.reportingInterval } : {}),
    ...(metrics.length ? { metrics } : {}),
  };
}

export interface StatsFilters {
  http: envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter[];
  network: envoy.config.listener.v3.Filter[];
}

export function statsFilters(s: MetricsSettings): StatsFilters {
  if (!s.enabled) return { http: [], network: [] };
  const config = pluginConfig(s);
  return {
    http: [{ name: STATS_FILTER, typed_config: typedAny(ISTIO_STATS_TYPE, config) }],
    network: [{ name: STATS_FILTER, typed_config: typedAny(ISTIO_STATS_TYPE, config) }],
  };
}
