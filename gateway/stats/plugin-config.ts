// stats.PluginConfig, the config of Istio's `istio.stats` HTTP and network filters, validated into what
// IstioMetrics applies (istio-metrics.ts).
import { durationMs, type stats } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { compileStatsConfig, type IstioStatsConfig } from './istio-metrics.ts';

const checkPluginConfig = fieldTable('stats.PluginConfig', {
  disable_host_header_fallback: true,
  tcp_reporting_duration: true,
  metrics: true,
  reporter: true,
  rotation_interval: 'series are kept for the life of the process (Envoy rotates the scope to bound them; here they are bounded by their label values)',
  graceful_deletion_interval: 'no scope rotation here (see rotation_interval)',
});
const checkMetricConfig = fieldTable('stats.MetricConfig', {
  dimensions: true,
  name: true,
  tags_to_remove: true,
  drop: true,
  match: "not implemented by Istio's filter either",
});

/** Envoy's PROTOBUF_GET_MS_OR_DEFAULT(tcp_reporting_duration, 5000). */
const DEFAULT_TCP_REPORTING_MS = 5000;

export function parsePluginConfig(c: stats.PluginConfig, where: string): IstioStatsConfig {
  checkPluginConfig(c, where);
  if (c.reporter !== undefined && c.reporter !== 'UNSPECIFIED')
    throw new ConfigError(`${where}.reporter: ${c.reporter} (waypoint reporting) is not supported by this proxy: a gateway reports as the client side`);
  const metrics = (c.metrics ?? []).map((m, i) => {
    checkMetricConfig(m, `${where}.metrics[${i}]`);
    return { name: m.name ?? '', drop: m.drop === true, tagsToRemove: m.tags_to_remove ?? [], dimensions: m.dimensions ?? {} };
  });
  const tcpReportingMs = durationMs(c.tcp_reporting_duration, DEFAULT_TCP_REPORTING_MS);
  if (tcpReportingMs <= 0) throw new ConfigError(`${where}.tcp_reporting_duration must be positive`);
  return compileStatsConfig({ disableHostHeaderFallback: c.disable_host_header_fallback === true, tcpReportingMs, metrics });
}
