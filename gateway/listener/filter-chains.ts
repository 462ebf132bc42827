// A listener's filter chains (envoy.config.listener.v3.FilterChain) beyond the single plaintext HCM chain:
// TLS termination (DownstreamTlsContext), SNI matching (filter_chain_match.server_names, read by the
// tls_inspector) and tcp_proxy chains. Envoy's chain selection, for the fields gateways use: an exact server
// name beats the longest matching wildcard (`*.example.com` matches any deeper name), which beats chains
// without server names; transport_protocol `tls` / `raw_buffer` must agree with what the connection is;
// no matching chain closes the connection (listener.<addr>.no_filter_chain_match).
import { ConfigError, anyType, arr, checkFields, durationMs, obj, str, strArr, type Json } from '../xds/json.ts';
import { parseHcm, type HcmSpec } from '../http/hcm-config.ts';
import { ROUTER_TYPE } from '../../xds/type-urls.ts';
import { parseDownstreamTransportSocket, type DownstreamTlsSpec } from '../tls/server-context.ts';
import { parseTcpProxy, TCP_PROXY_TYPE, type TcpProxySpec } from './tcp-proxy.ts';

const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

export interface FilterChainSpec {
  index: number;
  serverNames: string[];
  /** filter_chain_match.transport_protocol ('' = any). */
  transportProtocol: string;
  tls: DownstreamTlsSpec | undefined;
  hcm: HcmSpec | undefined;
  tcp: TcpProxySpec | undefined;
  /** transport_socket_connect_timeout (Istio: 15 s); 0 = none. */
  handshakeTimeoutMs: number;
}

/** True when a listener needs the multi-chain path (TLS, SNI matching, tcp_proxy or several chains). */
export function needsFilterChains(l: Json): boolean {
  const chains = Array.isArray(l.filter_chains) ? (l.filter_chains as Json[]) : [];
  if (chains.length !== 1) return chains.length > 1;
  const fc = chains[0] as Json;
  const match = fc.filter_chain_match as Json | undefined;
  if (match && Object.keys(match).length > 0) return true;
  const ts = fc.transport_socket as Json | undefined;
  if (ts) {
    const t = typeof (ts.typed_config as Json | undefined)?.['@type'] === 'string' ? String((ts.typed_config as Json)['@type']) : '';
    const n = typeof ts.name === 'string' ? ts.name : '';
    if (!t.endsWith('RawBuffer') && n !== 'envoy.transport_sockets.raw_buffer') return true;
  }
  const filters = Array.isArray(fc.filters) ? (fc.filters as Json[]) : [];
  return filters.some((f) => anyType(obj(f.typed_config, 'filter')) === TCP_PROXY_TYPE);
}

export function parseFilterChains(l: Json, where: string): FilterChainSpec[] {
  const out: FilterChainSpec[] = [];
  for (const [i, fc] of arr(l.filter_chains, `${where}.filter_chains`).entries()) {
    const wc = `${where}.filter_chains[${i}]`;
    checkFields(fc, wc, ['filters', 'filter_chain_match', 'transport_socket', 'name', 'metadata', 'transport_socket_connect_timeout']);
    const m = obj(fc.filter_chain_match, `${wc}.filter_chain_match`);
    checkFields(m, `${wc}.filter_chain_match`, ['server_names', 'transport_protocol', 'application_protocols']);
    if (strArr(m.application_protocols, wc).length > 0)
      throw new ConfigError(`${wc}.filter_chain_match: application_protocols matching is not supported by this proxy`);
    const tls =
      fc.transport_socket === undefined
        ? undefined
        : parseDownstreamTransportSocket(obj(fc.transport_socket, `${wc}.transport_socket`), `${wc}.transport_socket`);
    const filters = arr(fc.filters, `${wc}.filters`);
    if (filters.length !== 1)
      throw new ConfigError(`${wc}: exactly one network filter (http_connection_manager or tcp_proxy) is supported, got ${filters.length}`);
    const f = filters[0] as Json;
    checkFields(f, `${wc}.filters[0]`, ['name', 'typed_config']);
    const cfg = obj(f.typed_config, `${wc}.filters[0].typed_config`);
    const t = anyType(cfg);
    let hcm: HcmSpec | undefined;
    let tcp: TcpProxySpec | undefined;
    if (t === HCM_TYPE) hcm = parseHcm(cfg, `${wc} HttpConnectionManager`);
    else if (t === TCP_PROXY_TYPE) tcp = parseTcpProxy(cfg, `${wc} TcpProxy`);
    else throw new ConfigError(`${wc}.filters[0]: network filter '${str(f.name, wc)}' (${t}) is not supported by this proxy`);
    out.push({
      index: i,
      serverNames: strArr(m.server_names, `${wc}.filter_chain_match.server_names`).map((s) => s.toLowerCase()),
      transportProtocol: str(m.transport_protocol, wc),
      tls,
      hcm,
      tcp,
      handshakeTimeoutMs: durationMs(fc.transport_socket_connect_timeout, `${wc}.transport_socket_connect_timeout`, 0),
    });
  }
  // Envoy rejects listeners whose chains have identical matches.
  const seen = new Set<string>();
  for (const c of out) {
    const keys = c.serverNames.length ? c.serverNames : [''];
    for (const k of keys) {
      const key = `${k}|${c.transportProtocol}`;
      if (seen.has(key)) throw new ConfigError(`${where}: multiple filter chains with the same matching rules (server name '${k || '*'}')`);
      seen.add(key);
    }
  }
  return out;
}

/** Compiled chain selection: exact names, wildcard suffixes, then chains without names. */
export class FilterChainMatcher<T extends { spec: FilterChainSpec }> {
  private readonly exact = new Map<string, T[]>();
  private readonly wildcard = new Map<string, T[]>();
  private readonly any: T[] = [];
  /** Whether any chain needs the ClientHello (server names or TLS transport protocol). */
  readonly needsInspection: boolean;

  constructor(chains: readonly T[]) {
    let inspect = false;
    for (const c of chains) {
      if (c.spec.serverNames.length === 0) this.any.push(c);
      for (const n of c.spec.serverNames) {
        inspect = true;
        const map = n.startsWith('*.') ? this.wildcard : this.exact;
        const key = n.startsWith('*.') ? n.slice(1) : n;
        let l = map.get(key);
        if (!l) map.set(key, (l = []));
        l.push(c);
      }
      if (c.spec.transportProtocol !== '' || c.spec.tls) inspect = true;
    }
    this.needsInspection = inspect;
  }

  select(sni: string | undefined, isTls: boolean): T | undefined {
    const fits = (l: readonly T[] | undefined): T | undefined =>
      l?.find((c) => c.spec.transportProtocol === '' || c.spec.transportProtocol === (isTls ? 'tls' : 'raw_buffer'));
    if (sni) {
      const e = fits(this.exact.get(sni));
      if (e) return e;
      // `*.b.example.com`, then `*.example.com`, ...: the longest wildcard wins.
      let i = sni.indexOf('.');
      while (i >= 0) {
        const w = fits(this.wildcard.get(sni.slice(i)));
        if (w) return w;
        i = sni.indexOf('.', i + 1);
      }
    }
    return fits(this.any);
  }
}

/**
 * The HCM a listener with only tcp_proxy chains is given (the listener machinery holds one HCM per listener):
 * inline empty routes, so it is warm at once; it never sees a request.
 */
export function tcpOnlyHcm(listenerName: string): HcmSpec {
  return parseHcm(
    {
      '@type': `type.googleapis.com/${HCM_TYPE}`,
      stat_prefix: `tcp_only_${listenerName}`,
      route_config: { name: '', virtual_hosts: [] },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
    },
    `listener '${listenerName}'`,
  );
}
