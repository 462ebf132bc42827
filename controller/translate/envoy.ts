// Small shared pieces of Envoy JSON as istiod writes them.
import type { Duration, JsonValue, envoy } from '../../xds/envoy.ts';

/** google.protobuf.Struct in proto3 JSON (filter metadata). */
export type Struct = { [k: string]: JsonValue };

/** `{ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}`: RDS/EDS over the ADS stream. */
export function adsConfigSource(): envoy.config.core.v3.ConfigSource {
  return { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' };
}

/** `outbound|<port>|<subset>|<host>` (model.BuildSubsetKey). */
export function clusterName(port: number, subset: string, host: string): string {
  return `outbound|${port}|${subset}|${host}`;
}

/** Parses a cluster name built by clusterName (model.ParseSubsetKey); undefined for other names. */
export function parseClusterName(name: string): { port: number; subset: string; host: string } | undefined {
  const parts = name.split('|');
  if (parts.length !== 4 || parts[0] !== 'outbound') return undefined;
  const port = Number(parts[1]);
  if (!Number.isInteger(port)) return undefined;
  return { port, subset: parts[2] ?? '', host: parts[3] ?? '' };
}

export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';

/** Mesh default connect timeout (meshConfig.connectTimeout). */
export const DEFAULT_CONNECT_TIMEOUT: Duration = '10s';

/** Sorted-key copy so Struct metadata prints the same way every time. */
export function sortedObject(o: Struct): Struct {
  const out: Struct = {};
  for (const [k, v] of Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[k] = v;
  return out;
}
