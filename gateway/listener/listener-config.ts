// envoy.config.listener.v3.Listener: validated and reduced to what the proxy implements (one plaintext
// filter chain holding an HTTP connection manager, as Istio emits for HTTP gateway servers).
import { compileAccessLogs, type CompiledAccessLog } from '../access-log/access-log-config.ts';
import { unpackAny, type envoy } from '../../xds/envoy.ts';
import { HCM_TYPE } from '../../xds/type-urls.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError, anyType } from '../xds/json.ts';
import { parseHcm, type HcmSpec } from '../http/hcm-config.ts';
import { parseDownstreamTransportSocket } from '../tls/server-context.ts';
import { checkFilterChain, checkNetworkFilter, HCM_NAME, needsFilterChains, parseFilterChains, tcpOnlyHcm, type FilterChainSpec } from './filter-chains.ts';

export interface ListenerSpec {
  name: string;
  address: string;
  port: number;
  hcm: HcmSpec;
  /** per_connection_buffer_limit_bytes (Envoy default 1 MiB): retry buffering limit. */
  bufferLimit: number;
  /** TLS, SNI-matched or tcp_proxy filter chains (gateway/listener/filter-chains.ts); `hcm` is then the first HCM chain's. */
  chains?: FilterChainSpec[];
  /** access_log: offered the connections no filter chain matched (response flag NR). */
  accessLogs: readonly CompiledAccessLog[];
}

const checkListener = fieldTable('envoy.config.listener.v3.Listener', {
  name: true,
  address: true,
  filter_chains: true,
  // Written for connections no filter chain matches (response flag NR), the only listener-level event here.
  access_log: true,
  listener_filters: true,
  per_connection_buffer_limit_bytes: true,
  use_original_dst: true,
  bind_to_port: true,
  traffic_direction:
    'spans are named as Envoy names them on OUTBOUND listeners (egress <host>), what Istio sets on every gateway listener; listener stats are named by address',
  metadata: 'read by Envoy extensions this proxy does not run',
  continue_on_listener_filters_timeout: "a connection whose ClientHello does not arrive in time is closed (Envoy's default, false)",
  listener_filters_timeout: "the ClientHello wait is fixed at Envoy's default, 15 s",
  drain_type: 'listeners drain when removed, moved to another address or on SIGTERM; there is no hot restart or failed health check to exempt one from',
  max_connections_to_accept_per_socket_event: 'an Envoy event-loop knob: node accepts connections as its event loop delivers them',
  enable_reuse_port: 'workers bind with SO_REUSEPORT when several serve (--concurrency), whatever this says',
  stat_prefix: 'listener stats are named by address (listener.<address>_<port>.*)',
  ignore_global_conn_limit: 'this proxy has no global connection limit',
  bypass_overload_manager: 'this proxy has no overload manager',
  tcp_backlog_size: "the accept backlog is fixed at node's default, 511",
  connection_balance_config: 'with several workers the kernel spreads connections (SO_REUSEPORT)',
  freebind: 'node cannot set IP_FREEBIND: a listener on an address this host does not have fails to bind, and is NACKed',
});
const checkAddress = fieldTable('envoy.config.core.v3.Address', { socket_address: true }, 'listener');
const checkSocketAddress = fieldTable(
  'envoy.config.core.v3.SocketAddress',
  {
    address: true,
    port_value: true,
    protocol: true,
    ipv4_compat: 'node binds IPv6 addresses dual-stack (IPv4 too) whether or not this is set',
  },
  'listener',
);
const checkListenerFilter = fieldTable('envoy.config.listener.v3.ListenerFilter', {
  name: true,
  typed_config: true,
  filter_disabled: 'the inspectors only read the first bytes of a connection: running one where it would be disabled changes nothing',
});

/** Listener filters that only read the connection; without TLS filter chains they change nothing. */
const HARMLESS_LISTENER_FILTERS = ['envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector'];
const TLS_INSPECTOR_TYPE = 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
const checkTlsInspector = fieldTable(TLS_INSPECTOR_TYPE, {
  initial_read_buffer_size:
    "only sizes Envoy's first read of the ClientHello (istiod: 512), which then grows to 64 KiB; here the ClientHello is read as it arrives, up to the same 64 KiB",
  enable_ja3_fingerprinting: 'the JA3 fingerprint only feeds access-log fields and filter state that nothing here reads',
});

export function parseListener(l: envoy.config.listener.v3.Listener): ListenerSpec {
  const name = l.name ?? '';
  if (!name) throw new ConfigError('listener without a name');
  const where = `listener '${name}'`;
  if ((l.socket_options ?? []).length > 0) throw new ConfigError(`${where}: socket_options are not supported by this proxy`);
  if ((l.additional_addresses ?? []).length > 0) throw new ConfigError(`${where}: additional_addresses are not supported by this proxy yet`);
  if (l.default_filter_chain !== undefined) throw new ConfigError(`${where}: default_filter_chain is not supported by this proxy`);
  checkListener(l, where);
  const addr = l.address ?? {};
  if (addr.socket_address === undefined) throw new ConfigError(`${where}: only socket_address listeners are supported`);
  checkAddress(addr, `${where}.address`);
  const sa = addr.socket_address;
  checkSocketAddress(sa, `${where}.address.socket_address`);
  if (sa.protocol !== undefined && sa.protocol !== 'TCP') throw new ConfigError(`${where}: ${sa.protocol} listeners are not supported`);
  if (l.use_original_dst === true) throw new ConfigError(`${where}: use_original_dst is not supported by this proxy`);
  if (l.bind_to_port === false) throw new ConfigError(`${where}: bind_to_port false is not supported by this proxy`);
  for (const [i, f] of (l.listener_filters ?? []).entries()) {
    const wf = `${where}.listener_filters[${i}]`;
    checkListenerFilter(f, wf);
    const t = f.typed_config === undefined ? '' : anyType(f.typed_config);
    const n = f.name ?? '';
    if (!HARMLESS_LISTENER_FILTERS.includes(n) && !t.includes('tls_inspector') && !t.includes('http_inspector')) {
      throw new ConfigError(`${wf}: listener filter '${n || t}' is not supported by this proxy`);
    }
    if (t === TLS_INSPECTOR_TYPE && f.typed_config !== undefined)
      checkTlsInspector(unpackAny(f.typed_config, `type.googleapis.com/${TLS_INSPECTOR_TYPE}`), `${wf}.typed_config`);
  }
  const address = sa.address ?? '';
  const port = sa.port_value ?? 0;
  const bufferLimit = l.per_connection_buffer_limit_bytes ?? 1024 * 1024;
  const accessLogs = compileAccessLogs(l.access_log, `${where}.access_log`);
  if (needsFilterChains(l)) {
    const fcs = parseFilterChains(l, where);
    return { name, address, port, hcm: fcs.find((c) => c.hcm)?.hcm ?? tcpOnlyHcm(name), bufferLimit, chains: fcs, accessLogs };
  }
  // One plaintext chain with the HTTP connection manager (filter_chain_match, TLS and tcp_proxy took the path above).
  const chains = l.filter_chains ?? [];
  if (chains.length !== 1)
    throw new ConfigError(`${where}: exactly one filter chain is supported (got ${chains.length}); TLS and SNI filter chains are not supported yet`);
  const fc = chains[0] as envoy.config.listener.v3.FilterChain;
  const wc = `${where}.filter_chains[0]`;
  checkFilterChain(fc, wc);
  if (fc.transport_socket !== undefined) parseDownstreamTransportSocket(fc.transport_socket, `${wc}.transport_socket`);
  const filters = fc.filters ?? [];
  if (filters.length !== 1) throw new ConfigError(`${wc}: exactly one network filter (the HTTP connection manager) is supported`);
  const f = filters[0] as envoy.config.listener.v3.Filter;
  checkNetworkFilter(f, `${wc}.filters[0]`);
  const cfg = f.typed_config ?? { '@type': '' };
  if (anyType(cfg) !== HCM_NAME)
    throw new ConfigError(`${wc}.filters[0]: network filter '${f.name ?? ''}' (${anyType(cfg)}) is not supported by this proxy yet`);
  return { name, address, port, hcm: parseHcm(unpackAny(cfg, HCM_TYPE), `${where} HttpConnectionManager`), bufferLimit, accessLogs };
}
