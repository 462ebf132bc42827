// A listener's filter chains (envoy.config.listener.v3.FilterChain) beyond the single plaintext HCM chain:
// TLS termination (DownstreamTlsContext), SNI matching (filter_chain_match.server_names, read by the
// tls_inspector) and tcp_proxy chains. Envoy's chain selection, for the fields gateways use: an exact server
// name beats the longest matching wildcard (`*.example.com` matches any deeper name), which beats chains
// without server names; transport_protocol `tls` / `raw_buffer` must agree with what the connection is;
// no matching chain closes the connection (listener.<addr>.no_filter_chain_match).
import { ISTIO_STATS_TYPE } from '../../xds/type-urls.ts';
import type { IstioStatsConfig } from '../stats/istio-metrics.ts';
import { parsePluginConfig } from '../stats/plugin-config.ts';
import { durationMs, typedAny, unpackAny, type envoy } from '../../xds/envoy.ts';
import { HCM_TYPE, NETWORK_RBAC_TYPE, ROUTER_TYPE, TCP_PROXY_TYPE, TYPE_PREFIX } from '../../xds/type-urls.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError, anyType } from '../xds/json.ts';
import { parseHcm, type HcmSpec } from '../http/hcm-config.ts';
import { isRawBuffer } from '../tls/common-context.ts';
import { parseDownstreamTransportSocket, type DownstreamTlsSpec } from '../tls/server-context.ts';
import { parseTcpProxy, type TcpProxySpec } from './tcp-proxy.ts';
import { parseNetworkRbac, type NetworkRbacFilter } from '../rbac/network.ts';
import { parseNetworkExtAuthz, type NetworkExtAuthzSpec } from '../extauthz/config.ts';

type Listener = envoy.config.listener.v3.Listener;

/** The message names of the network filters this proxy runs, as anyType() gives them. */
export const HCM_NAME = HCM_TYPE.slice(TYPE_PREFIX.length);
const TCP_PROXY_NAME = TCP_PROXY_TYPE.slice(TYPE_PREFIX.length);
const NETWORK_RBAC_NAME = NETWORK_RBAC_TYPE.slice(TYPE_PREFIX.length);
const NETWORK_EXT_AUTHZ_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz';
const NETWORK_EXT_AUTHZ_NAME = NETWORK_EXT_AUTHZ_TYPE.slice(TYPE_PREFIX.length);
const ISTIO_STATS_NAME = ISTIO_STATS_TYPE.slice(TYPE_PREFIX.length);

/** A network filter before tcp_proxy (AuthorizationPolicy), in chain order. */
type PreFilterSpec = { kind: 'rbac'; rbac: NetworkRbacFilter } | { kind: 'ext_authz'; extAuthz: NetworkExtAuthzSpec };

export interface FilterChainSpec {
  index: number;
  serverNames: string[];
  /** filter_chain_match.transport_protocol ('' = any). */
  transportProtocol: string;
  tls: DownstreamTlsSpec | undefined;
  hcm: HcmSpec | undefined;
  tcp: TcpProxySpec | undefined;
  /** Network RBAC and ext_authz filters (AuthorizationPolicy) before tcp_proxy, in chain order. */
  network: PreFilterSpec[];
  /** Istio's `istio.stats` network filter before tcp_proxy: the connection's istio_tcp_* metrics. */
  istioStats: IstioStatsConfig | undefined;
  /** transport_socket_connect_timeout (Istio: 15 s); 0 = none. */
  handshakeTimeoutMs: number;
}

export const checkFilterChain = fieldTable('envoy.config.listener.v3.FilterChain', {
  filters: true,
  filter_chain_match: true,
  transport_socket: true,
  transport_socket_connect_timeout: true,
  name: "names the chain for Envoy's filter_chain_matcher, which Istio does not use for gateways; chains are selected by filter_chain_match",
  metadata: 'read by Envoy extensions this proxy does not run',
});
const checkChainMatch = fieldTable('envoy.config.listener.v3.FilterChainMatch', { server_names: true, transport_protocol: true });
export const checkNetworkFilter = fieldTable('envoy.config.listener.v3.Filter', {
  name: "the filter is the one its typed_config's type names; the name only appears in messages",
  typed_config: true,
});

/** True when a listener needs the multi-chain path (TLS, SNI matching, tcp_proxy or several chains). */
export function needsFilterChains(l: Listener): boolean {
  const chains = l.filter_chains ?? [];
  if (chains.length !== 1) return chains.length > 1;
  const fc = chains[0] as envoy.config.listener.v3.FilterChain;
  if (fc.filter_chain_match && Object.keys(fc.filter_chain_match).length > 0) return true;
  if (fc.transport_socket && !isRawBuffer(fc.transport_socket)) return true;
  return (fc.filters ?? []).some((f) => f.typed_config !== undefined && anyType(f.typed_config) === TCP_PROXY_NAME);
}

export function parseFilterChains(l: Listener, where: string): FilterChainSpec[] {
  const out: FilterChainSpec[] = [];
  for (const [i, fc] of (l.filter_chains ?? []).entries()) {
    const wc = `${where}.filter_chains[${i}]`;
    checkFilterChain(fc, wc);
    const m = fc.filter_chain_match ?? {};
    if ((m.application_protocols ?? []).length > 0)
      throw new ConfigError(`${wc}.filter_chain_match: application_protocols matching is not supported by this proxy`);
    checkChainMatch(m, `${wc}.filter_chain_match`);
    const tls = fc.transport_socket === undefined ? undefined : parseDownstreamTransportSocket(fc.transport_socket, `${wc}.transport_socket`);
    const filters = fc.filters ?? [];
    if (filters.length === 0) throw new ConfigError(`${wc}: a filter chain needs a network filter (http_connection_manager or tcp_proxy)`);
    // Network RBAC and ext_authz filters, then exactly one terminal filter: what istiod builds (AuthorizationPolicy
    // filters only before tcp_proxy).
    const network: PreFilterSpec[] = [];
    let istioStats: IstioStatsConfig | undefined;
    for (const [j, rf] of filters.slice(0, -1).entries()) {
      checkNetworkFilter(rf, `${wc}.filters[${j}]`);
      const rc = rf.typed_config ?? { '@type': '' };
      const w = `${wc}.filters[${j}].typed_config`;
      if (anyType(rc) === NETWORK_RBAC_NAME) network.push({ kind: 'rbac', rbac: parseNetworkRbac(unpackAny(rc, NETWORK_RBAC_TYPE), w) });
      else if (anyType(rc) === NETWORK_EXT_AUTHZ_NAME)
        network.push({ kind: 'ext_authz', extAuthz: parseNetworkExtAuthz(unpackAny(rc, NETWORK_EXT_AUTHZ_TYPE), w) });
      else if (anyType(rc) === ISTIO_STATS_NAME) istioStats = parsePluginConfig(unpackAny(rc, ISTIO_STATS_TYPE), w);
      else
        throw new ConfigError(
          `${wc}.filters[${j}]: network filter '${rf.name ?? ''}' (${anyType(rc)}) is not supported by this proxy (only envoy.filters.network.rbac, envoy.filters.network.ext_authz and istio.stats may precede tcp_proxy)`,
        );
    }
    const last = filters.length - 1;
    const f = filters[last] as envoy.config.listener.v3.Filter;
    checkNetworkFilter(f, `${wc}.filters[${last}]`);
    const cfg = f.typed_config ?? { '@type': '' };
    const t = anyType(cfg);
    let hcm: HcmSpec | undefined;
    let tcp: TcpProxySpec | undefined;
    if (t === HCM_NAME) hcm = parseHcm(unpackAny(cfg, HCM_TYPE), `${wc} HttpConnectionManager`);
    else if (t === TCP_PROXY_NAME) tcp = parseTcpProxy(unpackAny(cfg, TCP_PROXY_TYPE), `${wc} TcpProxy`);
    else throw new ConfigError(`${wc}.filters[${last}]: network filter '${f.name ?? ''}' (${t}) is not supported by this proxy`);
    if (hcm && (network.length > 0 || istioStats))
      throw new ConfigError(
        `${wc}: network RBAC, ext_authz or istio.stats before the http_connection_manager is not supported by this proxy (istiod uses the HTTP filters there)`,
      );
    out.push({
      index: i,
      serverNames: (m.server_names ?? []).map((s) => s.toLowerCase()),
      transportProtocol: m.transport_protocol ?? '',
      tls,
      hcm,
      tcp,
      network,
      istioStats,
      handshakeTimeoutMs: durationMs(fc.transport_socket_connect_timeout, 0),
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
      stat_prefix: `tcp_only_${listenerName}`,
      route_config: { name: '', virtual_hosts: [] },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: typedAny(ROUTER_TYPE, {}) }],
    },
    `listener '${listenerName}'`,
  );
}
