// envoy.config.listener.v3.Listener: validated and reduced to what the proxy implements (one plaintext
// filter chain holding an HTTP connection manager, as Istio emits for HTTP gateway servers).
import { ConfigError, anyType, arr, bool, checkFields, num, obj, str, type Json } from '../xds/json.ts';
import { parseHcm, type HcmSpec } from '../http/hcm-config.ts';
import { needsFilterChains, parseFilterChains, tcpOnlyHcm, type FilterChainSpec } from './filter-chains.ts';

export interface ListenerSpec {
  name: string;
  address: string;
  port: number;
  hcm: HcmSpec;
  /** per_connection_buffer_limit_bytes (Envoy default 1 MiB): retry buffering limit. */
  bufferLimit: number;
  /** TLS, SNI-matched or tcp_proxy filter chains (gateway/listener/filter-chains.ts); `hcm` is then the first HCM chain's. */
  chains?: FilterChainSpec[];
}

const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

export function parseListener(l: Json): ListenerSpec {
  const name = str(l.name, 'listener name');
  if (!name) throw new ConfigError('listener without a name');
  const where = `listener '${name}'`;
  checkFields(l, where, [
    'name',
    'address',
    'filter_chains',
    'listener_filters',
    'traffic_direction',
    'per_connection_buffer_limit_bytes',
    'metadata',
    'continue_on_listener_filters_timeout',
    'listener_filters_timeout',
    'drain_type',
    'max_connections_to_accept_per_socket_event',
    'enable_reuse_port',
    'stat_prefix',
    'ignore_global_conn_limit',
    'bypass_overload_manager',
    'tcp_backlog_size',
    'connection_balance_config',
    'use_original_dst',
    'bind_to_port',
    'freebind',
    'socket_options',
    'access_log',
    'additional_addresses',
    'default_filter_chain',
  ]);
  const addr = obj(l.address, `${where}.address`);
  if (addr.socket_address === undefined) throw new ConfigError(`${where}: only socket_address listeners are supported`);
  const sa = obj(addr.socket_address, `${where}.address.socket_address`);
  checkFields(sa, `${where}.address.socket_address`, ['address', 'port_value', 'protocol', 'ipv4_compat']);
  if (sa.protocol !== undefined && sa.protocol !== 'TCP') throw new ConfigError(`${where}: ${str(sa.protocol, where)} listeners are not supported`);
  if (bool(l.use_original_dst, where)) throw new ConfigError(`${where}: use_original_dst is not supported by this proxy`);
  if (l.bind_to_port !== undefined && !bool(l.bind_to_port, where)) throw new ConfigError(`${where}: bind_to_port false is not supported by this proxy`);
  if (arr(l.socket_options, where).length > 0) throw new ConfigError(`${where}: socket_options are not supported by this proxy`);
  if (arr(l.access_log, where).length > 0) throw new ConfigError(`${where}: listener access logs are not supported by this proxy`);
  if (arr(l.additional_addresses, where).length > 0) throw new ConfigError(`${where}: additional_addresses are not supported by this proxy yet`);
  if (l.default_filter_chain !== undefined) throw new ConfigError(`${where}: default_filter_chain is not supported by this proxy`);
  for (const [i, f] of arr(l.listener_filters, `${where}.listener_filters`).entries()) {
    const t = f.typed_config === undefined ? '' : anyType(obj(f.typed_config, where));
    const n = str(f.name, where);
    // Inspectors only read the connection; without TLS filter chains they change nothing.
    const harmless = ['envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector'];
    if (!harmless.includes(n) && !t.includes('tls_inspector') && !t.includes('http_inspector')) {
      throw new ConfigError(`${where}.listener_filters[${i}]: listener filter '${n || t}' is not supported by this proxy`);
    }
  }
  if (needsFilterChains(l)) {
    const fcs = parseFilterChains(l, where);
    return {
      name,
      address: str(sa.address, `${where}.address.socket_address.address`),
      port: num(sa.port_value, `${where}.address.socket_address.port_value`),
      hcm: fcs.find((c) => c.hcm)?.hcm ?? tcpOnlyHcm(name),
      bufferLimit: num(l.per_connection_buffer_limit_bytes, where, 1024 * 1024),
      chains: fcs,
    };
  }
  const chains = arr(l.filter_chains, `${where}.filter_chains`);
  if (chains.length !== 1)
    throw new ConfigError(`${where}: exactly one filter chain is supported (got ${chains.length}); TLS and SNI filter chains are not supported yet`);
  const fc = chains[0] as Json;
  const wc = `${where}.filter_chains[0]`;
  checkFields(fc, wc, ['filters', 'filter_chain_match', 'transport_socket', 'name', 'metadata', 'transport_socket_connect_timeout']);
  if (fc.filter_chain_match !== undefined && Object.keys(obj(fc.filter_chain_match, wc)).length > 0) {
    throw new ConfigError(`${wc}: filter_chain_match is not supported by this proxy yet`);
  }
  if (fc.transport_socket !== undefined) {
    const ts = obj(fc.transport_socket, `${wc}.transport_socket`);
    const t = ts.typed_config === undefined ? '' : anyType(obj(ts.typed_config, wc));
    if (!t.endsWith('RawBuffer')) throw new ConfigError(`${wc}: transport_socket ${t || str(ts.name, wc)} (downstream TLS) is not supported by this proxy yet`);
  }
  const filters = arr(fc.filters, `${wc}.filters`);
  if (filters.length !== 1) throw new ConfigError(`${wc}: exactly one network filter (the HTTP connection manager) is supported`);
  const f = filters[0] as Json;
  checkFields(f, `${wc}.filters[0]`, ['name', 'typed_config']);
  const cfg = obj(f.typed_config, `${wc}.filters[0].typed_config`);
  if (anyType(cfg) !== HCM_TYPE)
    throw new ConfigError(`${wc}.filters[0]: network filter '${str(f.name, wc)}' (${anyType(cfg)}) is not supported by this proxy yet`);
  return {
    name,
    address: str(sa.address, `${where}.address.socket_address.address`),
    port: num(sa.port_value, `${where}.address.socket_address.port_value`),
    hcm: parseHcm(cfg, `${where} HttpConnectionManager`),
    bufferLimit: num(l.per_connection_buffer_limit_bytes, where, 1024 * 1024),
  };
}
