// Istio's bootstrap (tools/packaging/common/envoy_bootstrap.json), as far as it shows in admin: the static
// listeners of the metrics and readiness ports (answered by status-server.ts), the static clusters
// prometheus_stats, agent, sds-grpc and xds-grpc, and the ADS config source, so /listeners, /clusters,
// /config_dump and cluster_manager.active_clusters look like an Istio gateway's.
import { typedAny, type Duration, type envoy } from '../../xds/envoy.ts';
import { HCM_TYPE, ROUTER_TYPE } from '../../xds/type-urls.ts';
import type { ListenerManager } from '../listener/listener-manager.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';

type Address = envoy.config.core.v3.Address;
type Listener = envoy.config.listener.v3.Listener;
type Cluster = envoy.config.cluster.v3.Cluster;

/** The proxy's own ports, as bound. */
export interface OwnPorts {
  admin: number;
  status: number;
  metrics: number;
}

/** The bootstrap's dynamic_resources: LDS and CDS over ADS through the xds-grpc cluster. */
export const DYNAMIC_RESOURCES: envoy.config.bootstrap.v3.Bootstrap.DynamicResources = {
  lds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
  cds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
  ads_config: {
    api_type: 'GRPC',
    set_node_on_first_message_only: true,
    transport_api_version: 'V3',
    grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
  },
};

/** The xds-grpc cluster's address, as Istio's bootstrap has it: a pipe for a Unix socket. */
function xdsClusterAddress(target: string): Address {
  if (target.startsWith('unix:')) return { pipe: { path: target.slice('unix:'.length).replace(/^\/\/(?=\/)/, '') } };
  const i = target.lastIndexOf(':');
  return { socket_address: { address: target.slice(0, i).replace(/^\[|\]$/g, ''), port_value: Number(target.slice(i + 1)) } };
}

function staticListener(name: string, port: number, statPrefix: string, prefix: string, cluster: string): Listener {
  return {
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: typedAny(HCM_TYPE, {
              stat_prefix: statPrefix,
              route_config: { virtual_hosts: [{ name: 'backend', domains: ['*'], routes: [{ match: { prefix }, route: { cluster } }] }] },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: typedAny(ROUTER_TYPE, {}) }],
            }),
          },
        ],
      },
    ],
  };
}

function staticCluster(name: string, address: Address, connectTimeout: Duration): Cluster {
  return {
    name,
    type: 'STATIC',
    connect_timeout: connectTimeout,
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
  };
}

/** Adds the bootstrap's static listeners and clusters, once the proxy's own ports are bound. */
export function addIstioBootstrap(dp: { listeners: ListenerManager; clusters: ClusterManager }, ports: OwnPorts, xdsAddress: string): void {
  const now = new Date().toISOString();
  const listener = (port: number, statPrefix: string, prefix: string, cluster: string) => {
    const name = `0.0.0.0_${port}`;
    return { name, address: '0.0.0.0', port, lastUpdated: now, json: staticListener(name, port, statPrefix, prefix, cluster) };
  };
  dp.listeners.staticListeners.push(
    listener(ports.metrics, 'stats', '/stats/prometheus', 'prometheus_stats'),
    listener(ports.status, 'agent', '/healthz/ready', 'agent'),
  );
  dp.clusters.addStatic(staticCluster('prometheus_stats', { socket_address: { address: '127.0.0.1', port_value: ports.admin } }, '0.250s'));
  dp.clusters.addStatic(staticCluster('agent', { socket_address: { address: '127.0.0.1', port_value: 15020 } }, '0.250s'));
  dp.clusters.addStatic(staticCluster('sds-grpc', { pipe: { path: './var/run/secrets/workload-spiffe-uds/socket' } }, '1s'));
  dp.clusters.addStatic(staticCluster('xds-grpc', xdsClusterAddress(xdsAddress), '1s'));
}
