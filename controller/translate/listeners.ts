// Gateway listeners (pilot/pkg/networking/core/gateway.go buildGatewayListeners, listener.go,
// listener_builder.go buildHTTPConnectionManager): one listener per (bind, resolved port), named
// `<bind>_<port>`, e.g. `0.0.0.0_8080` for a Gateway port 80 behind a Service 80 -> 8080.
import type { JsonObject } from '../../xds/protos.ts';
import { CORS_TYPE, FAULT_TYPE, HCM_TYPE, ROUTER_TYPE } from '../../xds/type-urls.ts';
import type { MergedServers } from '../model/gateways.ts';
import type { PushContext } from '../model/push-context.ts';
import { isHTTP } from '../model/protocol.ts';
import { adsConfigSource } from './envoy.ts';
import { tcpProxyFilters } from './tcp-routes.ts';

/** Envoy's name for a listener: `<bind>_<port>`. */
export function listenerName(bind: string, port: number): string {
  return `${bind || '0.0.0.0'}_${port}`;
}

/**
 * HTTP filters of a gateway HCM. Istio's chain is istio.metadata_exchange, grpc_stats, istio.alpn,
 * fault, cors, istio.stats, router; the istio.* filters are Istio's own extensions whose protos are not
 * published on npm (and which only feed Istio telemetry), and grpc_stats only counts gRPC messages, so
 * meshgate emits the Envoy filters that change request handling: fault, cors, router.
 */
function httpFilters(): JsonObject[] {
  return [
    { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT_TYPE } },
    { name: 'envoy.filters.http.cors', typed_config: { '@type': CORS_TYPE } },
    { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } },
  ];
}

/** buildGatewayConnectionManager + buildHTTPConnectionManager with Istio's gateway defaults. */
export function gatewayHttpConnectionManager(statPrefix: string, routeName: string): JsonObject {
  return {
    '@type': HCM_TYPE,
    codec_type: 'AUTO',
    stat_prefix: statPrefix,
    rds: { config_source: adsConfigSource(), route_config_name: routeName },
    http_filters: httpFilters(),
    // Gateways are the edge: trust the peer address, no XFF hops (gatewayTopology.numTrustedProxies 0).
    use_remote_address: true,
    xff_num_trusted_hops: 0,
    forward_client_cert_details: 'SANITIZE_SET',
    set_current_client_cert_details: { subject: true, cert: true, dns: true, uri: true },
    server_name: 'istio-envoy',
    server_header_transformation: 'OVERWRITE',
    http_protocol_options: {},
    upgrade_configs: [{ upgrade_type: 'websocket' }],
    stream_idle_timeout: '0s',
    // meshConfig.pathNormalization DEFAULT.
    normalize_path: true,
    path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
  };
}

function httpFilterChain(listener: string, ms: MergedServers): JsonObject {
  return {
    filters: [
      {
        name: 'envoy.filters.network.http_connection_manager',
        // `outbound_<listener>;` (the trailing ';' is Istio's stat-prefix delimiter since 1.23).
        typed_config: gatewayHttpConnectionManager(`outbound_${listener};`, ms.routeName),
      },
    ],
    // PILOT_GATEWAY_TRANSPORT_SOCKET_CONNECT_TIMEOUT default (Istio 1.30+).
    transport_socket_connect_timeout: '15s',
  };
}

/**
 * Filter chains for one ServerPort. HTTP-like ports get one HCM chain; plain TCP servers a tcp_proxy
 * chain from the first matching VirtualService tcp rule. HTTPS termination and TLS (SNI) chains come with
 * the TLS work. A listener with no chain is not emitted, as istiod does.
 */
function filterChains(push: PushContext, listener: string, ms: MergedServers): JsonObject[] {
  if (isHTTP(ms.serverPort.protocol)) return [httpFilterChain(listener, ms)];
  const chains: JsonObject[] = [];
  for (const gs of ms.servers) {
    if (gs.server.tls) continue; // TLS termination / passthrough: not yet.
    const filters = tcpProxyFilters(push, gs);
    if (filters) chains.push({ filters, transport_socket_connect_timeout: '15s' });
  }
  return chains;
}

export function buildListeners(push: PushContext): JsonObject[] {
  const merged = push.merged;
  const out: JsonObject[] = [];
  const seen = new Set<string>();
  for (const sp of merged.serverPorts) {
    const ms = merged.merged.get(`${sp.number}/${sp.protocol}/${sp.bind}`);
    if (!ms) continue;
    const bind = sp.bind || '0.0.0.0';
    const name = listenerName(bind, sp.number);
    if (seen.has(name)) continue;
    const chains = filterChains(push, name, ms);
    if (chains.length === 0) continue;
    seen.add(name);
    out.push({
      name,
      address: { socket_address: { address: bind, port_value: sp.number } },
      filter_chains: chains,
      traffic_direction: 'OUTBOUND',
      // MAX_CONNECTIONS_PER_SOCKET_EVENT_LOOP default 1.
      max_connections_to_accept_per_socket_event: 1,
    });
  }
  return out;
}
