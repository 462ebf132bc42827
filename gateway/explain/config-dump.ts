// A live gateway's resources for explain, from its admin API: /config_dump?include_eds (Envoy's
// envoy.admin.v3 dumps: the active listeners, route configurations, clusters and endpoints) and
// /clusters?format=json (the endpoints as the proxy sees them: EDS health, outlier ejection, requests in flight).
import type { envoy } from '../../xds/envoy.ts';
import { T } from '../admin/config-dump.ts';
import type { EnvoyConfig } from './explain.ts';

type Dump = { '@type'?: string } & Record<string, unknown>;

/** The resources of a /config_dump?include_eds body and a /clusters?format=json body. */
export function configFromAdmin(configDump: unknown, clusters: unknown): EnvoyConfig {
  const configs = (configDump as { configs?: Dump[] } | null)?.configs;
  if (!Array.isArray(configs)) throw new Error('the admin /config_dump answer has no configs: is this an Envoy or meshgate admin endpoint?');
  const of = (type: string): Dump => configs.find((c) => c['@type'] === type) ?? {};
  const listeners = of(T.listeners) as envoy.admin.v3.ListenersConfigDump;
  const routes = of(T.routes) as envoy.admin.v3.RoutesConfigDump;
  const cds = of(T.clusters) as envoy.admin.v3.ClustersConfigDump;
  const eds = of(T.endpoints) as envoy.admin.v3.EndpointsConfigDump;
  return {
    listeners: [
      ...(listeners.static_listeners ?? []).flatMap((l) => (l.listener ? [l.listener] : [])),
      // Only active listeners take connections: a warming one waits for its routes or secrets.
      ...(listeners.dynamic_listeners ?? []).flatMap((l) => (l.active_state?.listener ? [l.active_state.listener] : [])),
    ] as envoy.config.listener.v3.Listener[],
    routes: [...(routes.static_route_configs ?? []), ...(routes.dynamic_route_configs ?? [])].flatMap((r) =>
      r.route_config ? [r.route_config] : [],
    ) as envoy.config.route.v3.RouteConfiguration[],
    clusters: [...(cds.static_clusters ?? []), ...(cds.dynamic_active_clusters ?? [])].flatMap((c) =>
      c.cluster ? [c.cluster] : [],
    ) as envoy.config.cluster.v3.Cluster[],
    endpoints: [...(eds.static_endpoint_configs ?? []), ...(eds.dynamic_endpoint_configs ?? [])].flatMap((e) =>
      e.endpoint_config ? [e.endpoint_config] : [],
    ) as envoy.config.endpoint.v3.ClusterLoadAssignment[],
    clusterStatuses: (clusters as envoy.admin.v3.Clusters | null)?.cluster_statuses ?? [],
  };
}
