// Opaque TCP servers: a tcp_proxy chain from the first bound VirtualService whose hosts match the server
// and whose `tcp` rule matches the port and gateway (gateway.go buildGatewayNetworkFiltersFromTCPRoutes,
// networkfilter.go buildOutboundNetworkFilters).
import { filterAccessLogs } from './access-log.ts';
import { typedAny, type envoy } from '../../xds/envoy.ts';
import { TCP_PROXY_TYPE } from '../../xds/type-urls.ts';
import type { PushContext } from '../model/push-context.ts';
import type { GatewayServer } from '../model/gateways.ts';
import type { L4MatchAttributes, RouteDestination } from '../model/istio-types.ts';
import type { VirtualServiceConfig } from '../model/virtual-services.ts';
import { matches } from '../model/host.ts';
import { virtualServicesForGateway } from '../model/virtual-services.ts';
import { toEnvoyDuration } from '../model/duration.ts';
import { destinationCluster } from './http-routes.ts';

/** pickMatchingGatewayHosts: any VS host overlapping a server host (`ns/` hosts only for that namespace). */
function hostsMatch(serverHosts: readonly string[], vsHosts: readonly string[], vsNamespace: string): boolean {
  for (const vh of vsHosts) {
    for (const sh of serverHosts) {
      const i = sh.indexOf('/');
      if (i >= 0 && sh.slice(0, i) !== vsNamespace) continue;
      if (matches(i >= 0 ? sh.slice(i + 1) : sh, vh)) return true;
    }
  }
  return false;
}

/** l4MultiMatch: no predicates match everything; otherwise any predicate with matching port and gateway. */
function l4Matches(preds: readonly L4MatchAttributes[] | undefined, gs: GatewayServer): boolean {
  if (!preds?.length) return true;
  return preds.some((m) => (!m.port || m.port === gs.server.port.number) && (!m.gateways?.length || m.gateways.includes(gs.gatewayName)));
}

/** buildOutboundNetworkFilters: a tcp_proxy to one cluster, or weighted clusters, with the DR's TCP settings. */
function tcpProxyFor(push: PushContext, routes: readonly RouteDestination[], gs: GatewayServer, vs: VirtualServiceConfig): envoy.config.listener.v3.Filter[] {
  const ctx = { push, listenPort: gs.server.port.number, gatewayName: gs.gatewayName, isTLS: false };
  const first = routes[0]?.destination;
  // ServiceForHostname: the gateway's own service for the host, its DestinationRule looked up for it.
  const svc = first ? push.serviceFor(first.host) : undefined;
  const dr = svc ? push.destinationRules.lookup(svc.hostname, svc.namespace) : undefined;
  const tcpPool = dr?.trafficPolicy?.connectionPool?.tcp;
  const proxy: envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy = {};
  if (routes.length === 1 && first) {
    const cluster = destinationCluster(ctx, first, undefined);
    proxy.stat_prefix = cluster;
    proxy.cluster = cluster;
  } else {
    proxy.stat_prefix = `${vs.name}.${vs.namespace}`;
    proxy.weighted_clusters = {
      clusters: routes.filter((d) => (d.weight ?? 0) > 0).map((d) => ({ name: destinationCluster(ctx, d.destination, undefined), weight: d.weight })),
    };
  }
  const idle = toEnvoyDuration(tcpPool?.idleTimeout);
  if (idle !== undefined) proxy.idle_timeout = idle;
  const maxDuration = toEnvoyDuration(tcpPool?.maxConnectionDuration);
  if (maxDuration !== undefined) proxy.max_downstream_connection_duration = maxDuration;
  // maybeSetHashPolicy: only source-IP hashing applies to TCP.
  if (dr?.trafficPolicy?.loadBalancer?.consistentHash?.useSourceIp) proxy.hash_policy = [{ source_ip: {} }];
  const accessLog = filterAccessLogs(push);
  if (accessLog.length) proxy.access_log = accessLog;
  return [{ name: 'envoy.filters.network.tcp_proxy', typed_config: typedAny(TCP_PROXY_TYPE, proxy) }];
}

export function tcpProxyFilters(push: PushContext, gs: GatewayServer): envoy.config.listener.v3.Filter[] | undefined {
  for (const vs of virtualServicesForGateway(push.virtualServices, push.identity.namespace, gs.gatewayName)) {
    if (!hostsMatch(gs.server.hosts, vs.spec.hosts ?? [], vs.namespace)) continue;
    for (const tcp of vs.spec.tcp ?? []) {
      if (!l4Matches(tcp.match, gs) || !tcp.route?.length) continue;
      return tcpProxyFor(push, tcp.route, gs, vs);
    }
  }
  return undefined;
}

/**
 * PASSTHROUGH servers (buildGatewayNetworkFiltersFromTLSRoutes): one chain per matching `tls` match of
 * each bound VirtualService, `server_names` = the match's `sniHosts`, no TLS context: the encrypted stream
 * is forwarded as is. A match naming an SNI host already claimed on this port and bind, by this server or
 * another passthrough server of the listener (`claimed`: host -> bind), is skipped whole (model.CheckDuplicates:
 * Envoy rejects duplicate filter-chain matches).
 */
export function tlsPassthroughChains(push: PushContext, gs: GatewayServer, claimed: Map<string, string>): envoy.config.listener.v3.FilterChain[] {
  const chains: envoy.config.listener.v3.FilterChain[] = [];
  const bind = gs.server.bind ?? '';
  for (const vs of virtualServicesForGateway(push.virtualServices, push.identity.namespace, gs.gatewayName)) {
    if (!hostsMatch(gs.server.hosts, vs.spec.hosts ?? [], vs.namespace)) continue;
    for (const tls of vs.spec.tls ?? []) {
      if (!tls.route?.length) continue;
      for (const m of tls.match ?? []) {
        if (!l4Matches([m], gs)) continue;
        const sni = m.sniHosts ?? [];
        if (sni.some((h) => claimed.get(h) === bind)) continue;
        for (const h of sni) claimed.set(h, bind);
        chains.push({ filter_chain_match: { server_names: sni }, filters: tcpProxyFor(push, tls.route, gs, vs), transport_socket_connect_timeout: '15s' });
      }
    }
  }
  return chains;
}
