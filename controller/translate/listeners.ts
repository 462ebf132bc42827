// Gateway listeners (pilot/pkg/networking/core/gateway.go buildGatewayListeners, listener.go,
// listener_builder.go buildHTTPConnectionManager): one listener per (bind, resolved port), named
// `<bind>_<port>`, e.g. `0.0.0.0_8080` for a Gateway port 80 behind a Service 80 -> 8080.
import { metricsSettings, statsFilters, type StatsFilters } from './stats-filter.ts';
import { typedAny, type envoy } from '../../xds/envoy.ts';
import { CORS_TYPE, DOWNSTREAM_TLS_TYPE, FAULT_TYPE, GRPC_STATS_TYPE, HCM_TYPE, ROUTER_TYPE, TLS_INSPECTOR_TYPE } from '../../xds/type-urls.ts';
import type { GatewayServer, MergedServers } from '../model/gateways.ts';
import { isHTTPServer } from '../model/gateways.ts';
import type { PushContext } from '../model/push-context.ts';
import { isHTTP } from '../model/protocol.ts';
import { adsConfigSource } from './envoy.ts';
import { tcpProxyFilters, tlsPassthroughChains } from './tcp-routes.ts';
import { filterAccessLogs, listenerAccessLogs } from './access-log.ts';
import { downstreamTlsContext, tlsTransportSocket } from './tls.ts';
import { gatewayTracing } from './tracing.ts';
import { authorizationNotes, authzContext, rbacHttpFilterGroups, rbacNetworkFilters } from './rbac.ts';
import { type JwksSource, jwtAuthnFilter } from './jwt-authn.ts';
import { type GatewayTopologySettings, PROXY_CONFIG_ANNOTATION, gatewayProxyConfig, gatewayTopologySettings } from '../model/proxy-config.ts';

type HttpFilter = envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;

/**
 * The filters every chain of this gateway gets: on every HCM the CUSTOM RBAC filters, the JWT filter
 * (RequestAuthentication) and the other RBAC filters, in that order, and the network RBAC filters on every TCP or
 * TLS chain; Istio's stats filter (when metrics are on) before the router or tcp_proxy.
 */
interface AuthzFilters {
  http: HttpFilter[];
  network: envoy.config.listener.v3.Filter[];
  stats: StatsFilters;
}

/** Envoy's name for a listener: `<bind>_<port>`. */
function listenerName(bind: string, port: number): string {
  return `${bind || '0.0.0.0'}_${port}`;
}

/**
 * HTTP filters of a gateway HCM. Istio's chain is istio.metadata_exchange, the CUSTOM RBAC filters, jwt_authn
 * (jwt-authn.ts), the other RBAC filters of the AuthorizationPolicies (rbac.ts), grpc_stats, istio.alpn, fault,
 * cors, istio.stats, router. meshgate leaves out istio.metadata_exchange and istio.alpn (peer metadata exchange and
 * ALPN override for in-mesh mTLS, which a gateway without sidecar peers has no use for), and emits istio.stats when a
 * Prometheus metrics provider applies (stats-filter.ts).
 */
function httpFilters(authz: readonly HttpFilter[], stats: readonly HttpFilter[]): HttpFilter[] {
  return [
    ...authz,
    // Always, as istiod does: per-cluster gRPC call and message counters, and the message counts (filter state)
    // Istio's stats filter reports as istio_request_messages_total / istio_response_messages_total.
    {
      name: 'envoy.filters.http.grpc_stats',
      typed_config: typedAny(GRPC_STATS_TYPE, { emit_filter_state: true, stats_for_all_methods: false }),
    },
    { name: 'envoy.filters.http.fault', typed_config: typedAny(FAULT_TYPE, {}) },
    { name: 'envoy.filters.http.cors', typed_config: typedAny(CORS_TYPE, {}) },
    ...stats,
    { name: 'envoy.filters.http.router', typed_config: typedAny(ROUTER_TYPE, {}) },
  ];
}

/**
 * buildGatewayConnectionManager + buildHTTPConnectionManager with Istio's gateway defaults; the XFF and XFCC
 * handling from the proxy's gatewayTopology (model/proxy-config.ts).
 */
function gatewayHttpConnectionManager(
  statPrefix: string,
  routeName: string,
  authz: AuthzFilters,
  topology: GatewayTopologySettings,
  accessLog: readonly envoy.config.accesslog.v3.AccessLog[],
): envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager {
  return {
    ...(accessLog.length ? { access_log: [...accessLog] } : {}),
    codec_type: 'AUTO',
    stat_prefix: statPrefix,
    rds: { config_source: adsConfigSource(), route_config_name: routeName },
    http_filters: httpFilters(authz.http, authz.stats.http),
    // Gateways are the edge: the peer address is the client's, unless gatewayTopology.numTrustedProxies says
    // how many proxies in front append to x-forwarded-for (the trusted client address is then read from it).
    use_remote_address: true,
    xff_num_trusted_hops: topology.xffNumTrustedHops,
    forward_client_cert_details: topology.forwardClientCertDetails,
    ...(topology.setCurrentClientCertDetails ? { set_current_client_cert_details: { subject: true, cert: true, dns: true, uri: true } } : {}),
    server_name: 'istio-envoy',
    server_header_transformation: 'OVERWRITE',
    http_protocol_options: {},
    // ENABLE_100_CONTINUE_HEADERS (default true): `Expect: 100-continue` goes upstream and the upstream's
    // 100 Continue comes back, instead of the gateway answering it itself.
    proxy_100_continue: true,
    upgrade_configs: [{ upgrade_type: 'websocket' }],
    stream_idle_timeout: '0s',
    // meshConfig.pathNormalization DEFAULT.
    normalize_path: true,
    path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
  };
}

/** The network filter holding a gateway HCM. */
function hcmFilter(
  push: PushContext,
  statPrefix: string,
  routeName: string,
  authz: AuthzFilters,
  topology: GatewayTopologySettings,
): envoy.config.listener.v3.Filter {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: typedAny(HCM_TYPE, {
      ...gatewayHttpConnectionManager(statPrefix, routeName, authz, topology, filterAccessLogs(push)),
      ...gatewayTracing(push),
    }),
  };
}

function httpFilterChain(
  push: PushContext,
  listener: string,
  ms: MergedServers,
  authz: AuthzFilters,
  topology: GatewayTopologySettings,
): envoy.config.listener.v3.FilterChain {
  return {
    // `outbound_<listener>;` (the trailing ';' is Istio's stat-prefix delimiter since 1.23).
    filters: [hcmFilter(push, `outbound_${listener};`, ms.routeName, authz, topology)],
    // PILOT_GATEWAY_TRANSPORT_SOCKET_CONNECT_TIMEOUT default (Istio 1.30+).
    transport_socket_connect_timeout: '15s',
  };
}

/** getSNIHostsForServer: server hosts without `ns/`, deduplicated, sorted; none when `*` is among them. */
function serverNames(gs: GatewayServer): string[] | undefined {
  const names = [...new Set(gs.server.hosts.map((h) => (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h)))].sort();
  return names.includes('*') ? undefined : names;
}

/**
 * A terminating server (SIMPLE, MUTUAL, OPTIONAL_MUTUAL): its DownstreamTlsContext, or undefined (with an
 * error) when it cannot be served. A missing or invalid credentialName Secret drops this server's filter
 * chain only; the listener's other servers keep working.
 */
function terminatingTls(push: PushContext, gs: GatewayServer): envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext | undefined {
  const tls = gs.server.tls ?? {};
  const fail = (field: string, message: string): undefined => {
    push.errors.push({
      kind: 'Gateway',
      namespace: gs.gateway.namespace,
      name: gs.gateway.name,
      origin: gs.gateway.origin,
      field: `spec.servers[${gs.index}].tls${field}`,
      message,
    });
    return undefined;
  };
  if (tls.mode === 'ISTIO_MUTUAL') {
    return fail(
      '.mode',
      'ISTIO_MUTUAL needs the mesh CA (SDS default/ROOTCA), which meshgate does not run: this server is not served; use SIMPLE or MUTUAL with a credentialName',
    );
  }
  const built = downstreamTlsContext(tls);
  for (const name of built.credentials.certificate) {
    const r = push.credentials.certificate(name);
    if (!r.ok) return fail('.credentialName', `${r.reason}: this server (hosts ${gs.server.hosts.join(', ')}) is not served until the Secret is fixed`);
  }
  for (const name of built.credentials.ca) {
    const r = push.credentials.ca(name);
    if (!r.ok)
      return fail(
        '.credentialName',
        `client CA for ${tls.mode}: ${r.reason}: this server (hosts ${gs.server.hosts.join(', ')}) is not served until the Secret is fixed`,
      );
  }
  return built.context;
}

/**
 * Filter chains for one ServerPort (buildGatewayTCPBasedFilterChains). HTTP-like ports get one HCM chain.
 * Otherwise, per server: HTTPS termination gets an HCM chain matched by SNI (server hosts) with a TLS
 * context and its own RDS; TLS termination a tcp_proxy chain behind TLS; PASSTHROUGH one chain per
 * VirtualService `tls` match (SNI from `sniHosts`, no TLS context); plain TCP a tcp_proxy chain.
 * A listener with no chain is not emitted, as istiod does. The RBAC network filters go before every
 * tcp_proxy (buildCompleteNetworkFilters).
 */
function filterChains(
  push: PushContext,
  listener: string,
  ms: MergedServers,
  sniClaimed: Map<string, string>,
  authz: AuthzFilters,
  topology: GatewayTopologySettings,
): envoy.config.listener.v3.FilterChain[] {
  if (isHTTP(ms.serverPort.protocol)) return [httpFilterChain(push, listener, ms, authz, topology)];
  const chains: envoy.config.listener.v3.FilterChain[] = [];
  const withAuthz = (filters: envoy.config.listener.v3.Filter[]): envoy.config.listener.v3.Filter[] => [...authz.network, ...authz.stats.network, ...filters];
  for (const gs of ms.servers) {
    const tls = gs.server.tls;
    if (!tls) {
      const filters = tcpProxyFilters(push, gs);
      if (filters) chains.push({ filters: withAuthz(filters), transport_socket_connect_timeout: '15s' });
      continue;
    }
    const mode = tls.mode ?? 'PASSTHROUGH';
    if (mode === 'PASSTHROUGH') {
      chains.push(...tlsPassthroughChains(push, gs, sniClaimed).map((c) => ({ ...c, filters: withAuthz(c.filters ?? []) })));
      continue;
    }
    if (mode === 'AUTO_PASSTHROUGH') {
      push.errors.push({
        kind: 'Gateway',
        namespace: gs.gateway.namespace,
        name: gs.gateway.name,
        origin: gs.gateway.origin,
        field: `spec.servers[${gs.index}].tls.mode`,
        message: 'AUTO_PASSTHROUGH routes mesh mTLS by SNI to in-mesh services and needs sidecars: not supported by meshgate, this server is not served',
      });
      continue;
    }
    const context = terminatingTls(push, gs);
    if (!context) continue;
    const names = serverNames(gs);
    const match: envoy.config.listener.v3.FilterChain = names ? { filter_chain_match: { server_names: names } } : {};
    const transportSocket = tlsTransportSocket(typedAny(DOWNSTREAM_TLS_TYPE, context));
    if (isHTTPServer(gs.server)) {
      const routeName = gatewayRouteName(push, gs);
      chains.push({
        ...match,
        // HTTPS chains use the server name as stat_prefix when set.
        filters: [hcmFilter(push, gs.server.name || `outbound_${listener};`, routeName, authz, topology)],
        transport_socket: transportSocket,
        transport_socket_connect_timeout: '15s',
      });
    } else {
      const filters = tcpProxyFilters(push, gs);
      if (filters) chains.push({ ...match, filters: withAuthz(filters), transport_socket: transportSocket, transport_socket_connect_timeout: '15s' });
    }
  }
  return chains;
}

/** The RDS name mergeGateways gave this HTTPS server. */
function gatewayRouteName(push: PushContext, gs: GatewayServer): string {
  for (const [name, servers] of push.merged.serversByRouteName) if (servers.includes(gs)) return name;
  return '';
}

/** tls_inspector is added when a chain matches on SNI or terminates TLS (every such chain has ALPN). */
function needsTlsInspector(chains: readonly envoy.config.listener.v3.FilterChain[]): boolean {
  return chains.some((c) => c.filter_chain_match?.server_names?.length || c.transport_socket);
}

/** Istio's TLSInspector (pilot/pkg/xds/filters): a first read of 512 bytes instead of Envoy's 64 KiB. */
function tlsInspector(): envoy.config.listener.v3.ListenerFilter {
  return { name: 'envoy.filters.listener.tls_inspector', typed_config: typedAny(TLS_INSPECTOR_TYPE, { initial_read_buffer_size: 512 }) };
}

/**
 * The gateway's gatewayTopology (the mesh defaultConfig with the pod's proxy.istio.io/config over it), or
 * undefined with an error when the gateway must serve no listener rather than trust the wrong client address:
 * - the annotation is invalid (Istio's agent does not start with it);
 * - gatewayTopology.proxyProtocol is set: istiod puts Envoy's PROXY protocol listener filter first on every
 *   listener, which meshgate's proxy does not implement; without it the PROXY header would reach the HTTP or TLS
 *   parser and the client address it carries would be lost.
 */
function topologyOf(push: PushContext): GatewayTopologySettings | undefined {
  const pc = gatewayProxyConfig(push.mesh.defaultConfig, push.identity.annotations);
  const fail = (message: string): undefined => {
    push.errors.push({
      kind: 'Pod',
      namespace: push.identity.namespace,
      name: push.identity.podName,
      origin: {},
      field: `metadata.annotations[${PROXY_CONFIG_ANNOTATION}]`,
      message,
    });
    return undefined;
  };
  if (!pc.ok) return fail(`${pc.error}: Istio's agent does not start with this proxy config; this gateway serves no listener until it is fixed`);
  const { settings } = gatewayTopologySettings(pc.config.gatewayTopology);
  if (settings.proxyProtocol)
    return fail(
      "gatewayTopology.proxyProtocol: meshgate's proxy does not implement the PROXY protocol listener filter; this gateway serves no listener while it is set (remove it, or have the load balancer send no PROXY header)",
    );
  return settings;
}

/**
 * buildGatewayListeners: one listener per bind and port. Servers on one port merge into one ServerPort per
 * protocol (mergeGateways), so HTTPS and TLS servers on a port (e.g. HTTPS terminated beside a TLS
 * PASSTHROUGH server, in one Gateway or several) are two ServerPorts: their filter chains are gathered into
 * the listener the first one opened, told apart by SNI.
 */
export function buildListeners(push: PushContext, jwks: JwksSource): envoy.config.listener.v3.Listener[] {
  const merged = push.merged;
  const ctx = authzContext(push);
  const rbac = rbacHttpFilterGroups(push.authorizationPolicies, ctx);
  const jwt = jwtAuthnFilter(push.requestAuthentications, jwks);
  const authz: AuthzFilters = {
    http: [...rbac.custom, ...(jwt.filter ? [jwt.filter] : []), ...rbac.rest],
    network: rbacNetworkFilters(push.authorizationPolicies, ctx),
    stats: statsFilters(metricsSettings(push.telemetry.metrics, push.mesh.extensionProviders)),
  };
  push.errors.push(...authorizationNotes(push.authorizationPolicies, ctx), ...jwt.notes);
  const topology = topologyOf(push);
  if (!topology) return [];
  const listeners = new Map<string, { bind: string; port: number; chains: envoy.config.listener.v3.FilterChain[] }>();
  // Passthrough SNI hosts claimed per port (and bind) across all its servers: Envoy refuses two equal chain matches.
  const sniByPort = new Map<number, Map<string, string>>();
  for (const sp of merged.serverPorts) {
    const ms = merged.merged.get(`${sp.number}/${sp.protocol}/${sp.bind}`);
    if (!ms) continue;
    const bind = sp.bind || '0.0.0.0';
    const name = listenerName(bind, sp.number);
    let sni = sniByPort.get(sp.number);
    if (!sni) sniByPort.set(sp.number, (sni = new Map<string, string>()));
    const chains = filterChains(push, name, ms, sni, authz, topology);
    const l = listeners.get(name);
    if (l) l.chains.push(...chains);
    else listeners.set(name, { bind, port: sp.number, chains });
  }
  const out: envoy.config.listener.v3.Listener[] = [];
  const accessLog = listenerAccessLogs(push);
  for (const [name, { bind, port, chains }] of listeners) {
    if (chains.length === 0) continue;
    out.push({
      name,
      address: { socket_address: { address: bind, port_value: port } },
      filter_chains: chains,
      ...(needsTlsInspector(chains) ? { listener_filters: [tlsInspector()] } : {}),
      traffic_direction: 'OUTBOUND',
      // MAX_CONNECTIONS_PER_SOCKET_EVENT_LOOP default 1.
      max_connections_to_accept_per_socket_event: 1,
      ...(accessLog.length ? { access_log: accessLog } : {}),
    });
  }
  return out;
}
