// The route map's graph (admin /routemap?format=json): listeners -> filter chains -> virtual hosts -> routes ->
// clusters -> endpoints, built from the same dumps /config_dump and /clusters render (no state of its own), with
// the counters Envoy keeps for each (listener.*, http.*, tcp.*, cluster.*, the hosts' stats) and the hosts'
// health as /clusters reports it. Each node carries the /config_dump query that shows its fragment and the
// `meshgate explain` command for a request that reaches it. Pure: config in, nodes and edges out.
import type { envoy } from '../../xds/envoy.ts';
import { HCM_TYPE, TCP_PROXY_TYPE } from '../../xds/type-urls.ts';
import type { Json } from '../xds/json.ts';
import { T } from './config-dump.ts';

type Listener = envoy.config.listener.v3.Listener;
type FilterChain = envoy.config.listener.v3.FilterChain;
type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;
type VirtualHost = envoy.config.route.v3.VirtualHost;
type Route = envoy.config.route.v3.Route;
type Cluster = envoy.config.cluster.v3.Cluster;
type ClusterStatus = envoy.admin.v3.ClusterStatus;
type HostStatus = envoy.admin.v3.HostStatus;

type NodeKind = 'listener' | 'filter_chain' | 'virtual_host' | 'route' | 'cluster' | 'endpoint';

/**
 * healthy: every host passes; degraded: some do not; unhealthy: hosts but none passes; empty: no host (Envoy's
 * 503 `no healthy upstream`); missing: a route names a cluster the configuration does not have (503, NC).
 */
type Health = 'healthy' | 'degraded' | 'unhealthy' | 'empty' | 'missing';

interface NodeStat {
  /** The counter's short name, as the page shows it. */
  label: string;
  /** Its full name in /stats ('' for a host's stats, which /clusters reports). */
  stat: string;
  value: number;
}

interface RouteMapNode {
  id: string;
  kind: NodeKind;
  name: string;
  /** Short facts: domains, match, action, filter chain match, Istio object. */
  detail: string[];
  stats: NodeStat[];
  health?: Health;
  /** Endpoints: eds_health_status, and failed_outlier_check when ejected (as /clusters?format=json). */
  hostHealth?: string;
  /** The admin query that shows this node's fragment of /config_dump ('' when there is none). */
  configDump: string;
  /** A `meshgate explain` command line for a request this node takes ('' when none can be derived). */
  explain: string;
}

interface RouteMapEdge {
  from: string;
  to: string;
  /** A weight (`30%`) or `mirror`. */
  label?: string;
}

export interface RouteMap {
  nodes: RouteMapNode[];
  edges: RouteMapEdge[];
}

/** An RE2 pattern matching exactly `s` (name_regex is a full match). */
export function re2Literal(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** `s` as one shell word: bare when it is plain, else single-quoted. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function dumpQuery(params: [string, string][]): string {
  return `/config_dump?${new URLSearchParams(params).toString()}`;
}

/** A Host for explain where any name does (a `*` domain, a TCP chain without SNI). */
const ANY_HOST = 'example.com';

/** A Host header that a virtual host's domains match: the first exact domain, else a name under the wildcard. */
function hostFor(domains: readonly string[]): string | undefined {
  const exact = domains.find((d) => !d.includes('*'));
  if (exact !== undefined) return exact;
  const d = domains[0];
  if (d === undefined) return undefined;
  if (d === '*') return ANY_HOST;
  return d.startsWith('*') ? `www${d.slice(1)}` : d.replace(/\*$/, 'www');
}

/** A path a route's match takes (undefined for a regex, which no fixed path stands for). */
function pathFor(m: Route['match']): string | undefined {
  if (m === undefined) return undefined;
  if (m.path !== undefined) return m.path;
  if (m.prefix !== undefined) return m.prefix === '' ? '/' : m.prefix;
  if (m.path_separated_prefix !== undefined) return m.path_separated_prefix;
  return undefined;
}

function matchSummary(m: Route['match']): string {
  if (m === undefined) return 'match: (none)';
  const parts: string[] = [];
  if (m.prefix !== undefined) parts.push(`prefix ${m.prefix === '' ? '/' : m.prefix}`);
  else if (m.path !== undefined) parts.push(`path ${m.path}`);
  else if (m.path_separated_prefix !== undefined) parts.push(`path_separated_prefix ${m.path_separated_prefix}`);
  else if (m.safe_regex !== undefined) parts.push(`regex ${m.safe_regex.regex ?? ''}`);
  else if (m.connect_matcher !== undefined) parts.push('CONNECT');
  for (const h of m.headers ?? []) parts.push(`header ${h.name ?? ''}${exactHeader(h) !== undefined ? `=${exactHeader(h)}` : ''}`);
  for (const q of m.query_parameters ?? []) parts.push(`query ${q.name ?? ''}`);
  return parts.join(', ');
}

function exactHeader(h: envoy.config.route.v3.HeaderMatcher): string | undefined {
  if (h.invert_match === true) return undefined;
  return h.string_match?.exact ?? h.exact_match;
}

/** The Istio object a route came from (its filter_metadata.istio.config, e.g. `/apis/networking.istio.io/v1/namespaces/default/virtual-service/httpbin`). */
function istioSource(r: Route): string | undefined {
  const cfg = (r.metadata?.filter_metadata?.istio as Json | undefined)?.config;
  if (typeof cfg !== 'string') return undefined;
  const m = /\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(cfg);
  if (!m) return cfg;
  const kind = (m[2] ?? '').replace(/(^|-)([a-z])/g, (_s, _d: string, c: string) => c.toUpperCase());
  return `${kind} ${m[1] ?? ''}/${m[3] ?? ''}`;
}

function actionSummary(r: Route): string[] {
  const out: string[] = [];
  if (r.redirect !== undefined) {
    const rd = r.redirect;
    const target = [rd.scheme_redirect ?? (rd.https_redirect ? 'https' : ''), rd.host_redirect ?? '', rd.path_redirect ?? rd.prefix_rewrite ?? '']
      .filter(Boolean)
      .join(' ');
    out.push(`redirect ${rd.response_code ?? 'MOVED_PERMANENTLY'}${target ? ` ${target}` : ''}`);
  }
  if (r.direct_response !== undefined) out.push(`direct response ${r.direct_response.status ?? 0}`);
  const a = r.route;
  if (a !== undefined) {
    if (a.cluster_header !== undefined) out.push(`cluster from header ${a.cluster_header}`);
    if (a.prefix_rewrite !== undefined) out.push(`rewrite prefix ${a.prefix_rewrite}`);
    if (a.regex_rewrite !== undefined) out.push(`rewrite regex ${a.regex_rewrite.pattern?.regex ?? ''}`);
    if (a.host_rewrite_literal !== undefined) out.push(`rewrite host ${a.host_rewrite_literal}`);
    if (a.timeout !== undefined && a.timeout !== '0s') out.push(`timeout ${a.timeout}`);
    if (a.retry_policy?.num_retries !== undefined) out.push(`retries ${a.retry_policy.num_retries}`);
  }
  if (r.typed_per_filter_config?.['envoy.filters.http.fault'] !== undefined) out.push('fault injection');
  return out;
}

/** The clusters a route sends to, with the edge label (weight, mirror). */
function routeTargets(r: Route): { cluster: string; label?: string }[] {
  const a = r.route;
  if (a === undefined) return [];
  const out: { cluster: string; label?: string }[] = [];
  if (a.cluster !== undefined) out.push({ cluster: a.cluster });
  const wc = a.weighted_clusters?.clusters ?? [];
  const total = wc.reduce((s, c) => s + (c.weight ?? 0), 0);
  for (const c of wc) {
    if (c.name === undefined) continue;
    const w = c.weight ?? 0;
    out.push({ cluster: c.name, label: total > 0 ? `${Math.round((w * 1000) / total) / 10}%` : `weight ${w}` });
  }
  for (const m of a.request_mirror_policies ?? []) if (m.cluster !== undefined) out.push({ cluster: m.cluster, label: 'mirror' });
  return out;
}

function chainSummary(fc: FilterChain, isDefault: boolean): { name: string; detail: string[]; sni?: string; tls: boolean } {
  const m = fc.filter_chain_match ?? {};
  const parts: string[] = [];
  const sni = m.server_names?.[0];
  if (m.server_names?.length) parts.push(`sni ${m.server_names.join(',')}`);
  if (m.transport_protocol) parts.push(m.transport_protocol);
  if (m.application_protocols?.length) parts.push(`alpn ${m.application_protocols.join(',')}`);
  if (m.destination_port !== undefined) parts.push(`port ${m.destination_port}`);
  const terminates = fc.transport_socket !== undefined;
  const tls = terminates || m.transport_protocol === 'tls' || sni !== undefined;
  const what = parts.length > 0 ? parts.join(', ') : isDefault ? 'default filter chain' : 'every connection';
  const detail = [...(fc.name ? [what] : []), ...(terminates ? ['TLS terminated here'] : tls ? ['TLS passed through'] : [])];
  return { name: fc.name || what, detail, ...(sni !== undefined ? { sni } : {}), tls };
}

interface ListenerEntry {
  listener: Listener;
  /** Where its dump element lives: static_listeners, or dynamic_listeners (active_state / warming_state). */
  resource: 'static_listeners' | 'dynamic_listeners';
  state?: 'active_state' | 'warming_state';
}

function dumpOf(configs: Json[], type: string): Json | undefined {
  return configs.find((d) => d['@type'] === type);
}

function listenersOf(configs: Json[]): ListenerEntry[] {
  const d = dumpOf(configs, T.listeners) as envoy.admin.v3.ListenersConfigDump | undefined;
  const out: ListenerEntry[] = [];
  // The configuration's own listeners first, then the bootstrap's (Istio's :15090 and :15021).
  for (const l of d?.dynamic_listeners ?? []) {
    const state = l.active_state ? 'active_state' : 'warming_state';
    const listener = l[state]?.listener as Listener | undefined;
    if (listener) out.push({ listener, resource: 'dynamic_listeners', state });
  }
  for (const s of d?.static_listeners ?? []) if (s.listener) out.push({ listener: s.listener as Listener, resource: 'static_listeners' });
  return out;
}

function routeConfigsOf(configs: Json[]): Map<string, RouteConfiguration> {
  const d = dumpOf(configs, T.routes) as envoy.admin.v3.RoutesConfigDump | undefined;
  const out = new Map<string, RouteConfiguration>();
  for (const r of d?.dynamic_route_configs ?? []) {
    const rc = r.route_config as RouteConfiguration | undefined;
    if (rc?.name !== undefined) out.set(rc.name, rc);
  }
  return out;
}

interface ClusterEntry {
  cluster: Cluster;
  resource: 'static_clusters' | 'dynamic_active_clusters' | 'dynamic_warming_clusters';
}

function clustersOf(configs: Json[]): Map<string, ClusterEntry> {
  const d = dumpOf(configs, T.clusters) as envoy.admin.v3.ClustersConfigDump | undefined;
  const out = new Map<string, ClusterEntry>();
  for (const resource of ['static_clusters', 'dynamic_active_clusters', 'dynamic_warming_clusters'] as const) {
    for (const c of d?.[resource] ?? []) {
      const cluster = c.cluster as Cluster | undefined;
      if (cluster?.name !== undefined && !out.has(cluster.name)) out.set(cluster.name, { cluster, resource });
    }
  }
  return out;
}

/** Which endpoint dump holds a cluster's ClusterLoadAssignment (with include_eds), if any. */
function endpointResourceOf(configs: Json[], cluster: string): string | undefined {
  const d = dumpOf(configs, T.endpoints) as envoy.admin.v3.EndpointsConfigDump | undefined;
  for (const resource of ['static_endpoint_configs', 'dynamic_endpoint_configs'] as const) {
    for (const e of d?.[resource] ?? []) if ((e.endpoint_config as Json | undefined)?.cluster_name === cluster) return resource;
  }
  return undefined;
}

function hostKey(h: HostStatus): string {
  const a = h.address;
  if (a?.pipe?.path !== undefined) return a.pipe.path;
  const s = a?.socket_address;
  if (s === undefined) return '';
  const ip = s.address ?? '';
  return `${ip.includes(':') ? `[${ip}]` : ip}:${s.port_value ?? 0}`;
}

function hostPasses(h: HostStatus): boolean {
  return (h.health_status?.eds_health_status ?? 'HEALTHY') === 'HEALTHY' && h.health_status?.failed_outlier_check !== true;
}

function clusterHealth(hosts: readonly HostStatus[]): Health {
  if (hosts.length === 0) return 'empty';
  const passing = hosts.filter(hostPasses).length;
  return passing === hosts.length ? 'healthy' : passing === 0 ? 'unhealthy' : 'degraded';
}

/**
 * The graph of a configuration. `configs`: /config_dump's dumps with include_eds; `clusters`: /clusters as JSON
 * (envoy.admin.v3.Clusters); `stats`: every stat's current value by name (/stats).
 */
export function buildRouteMap(configs: Json[], clusters: envoy.admin.v3.Clusters, stats: ReadonlyMap<string, number>): RouteMap {
  const nodes: RouteMapNode[] = [];
  const edges: RouteMapEdge[] = [];
  const byId = new Map<string, RouteMapNode>();
  const add = (n: RouteMapNode): RouteMapNode => {
    const seen = byId.get(n.id);
    if (seen) return seen;
    byId.set(n.id, n);
    nodes.push(n);
    return n;
  };
  const edgeKeys = new Set<string>();
  const link = (from: string, to: string, label?: string): void => {
    const key = `${from}\n${to}\n${label ?? ''}`;
    if (edgeKeys.has(key)) return;
    edgeKeys.add(key);
    edges.push({ from, to, ...(label !== undefined ? { label } : {}) });
  };
  const statsOf = (prefix: string, names: readonly string[]): NodeStat[] =>
    names.flatMap((label) => {
      const stat = `${prefix}${label}`;
      const value = stats.get(stat);
      return value === undefined ? [] : [{ label, stat, value }];
    });

  const routeConfigs = routeConfigsOf(configs);
  const clusterEntries = clustersOf(configs);
  /** The first explain command that reaches each cluster, for the cluster and its endpoints. */
  const clusterExplain = new Map<string, string>();
  const clusterNodeId = (name: string): string => `cluster:${name}`;
  const referenced: string[] = [];
  const reach = (from: string, cluster: string, explain: string, label?: string): void => {
    if (!referenced.includes(cluster)) referenced.push(cluster);
    if (explain && !clusterExplain.has(cluster)) clusterExplain.set(cluster, explain);
    link(from, clusterNodeId(cluster), label);
  };

  for (const entry of listenersOf(configs)) {
    const l = entry.listener;
    const lname = l.name ?? '';
    const sa = l.address?.socket_address;
    const port = sa?.port_value;
    const listenerDump: [string, string][] = [
      ['resource', entry.resource],
      ['name_regex', re2Literal(lname)],
    ];
    const explainBase = ['meshgate', 'explain', ...(port !== undefined ? ['--port', String(port)] : [])];
    const lid = `listener:${lname}`;
    const listenerNode = add({
      id: lid,
      kind: 'listener',
      name: lname,
      detail: [
        ...(sa ? [`${sa.address ?? ''}:${port ?? 0}`] : []),
        ...(entry.resource === 'static_listeners' ? ['bootstrap (static)'] : []),
        ...(entry.state === 'warming_state' ? ['warming'] : []),
      ],
      stats: sa ? statsOf(`listener.${sa.address ?? ''}_${port ?? 0}.`, ['downstream_cx_total', 'downstream_cx_active', 'no_filter_chain_match']) : [],
      configDump: dumpQuery(listenerDump),
      explain: '',
    });
    const chains: [FilterChain, boolean, string][] = (l.filter_chains ?? []).map((fc) => [fc, false, 'filter_chains']);
    if (l.default_filter_chain) chains.push([l.default_filter_chain, true, 'default_filter_chain']);
    chains.forEach(([fc, isDefault, field], i) => {
      const sum = chainSummary(fc, isDefault);
      const fid = `chain:${lname}#${isDefault ? 'default' : i}`;
      const chainExplain = [...explainBase, ...(sum.tls ? ['--tls'] : []), ...(sum.sni !== undefined ? ['--sni', sum.sni] : [])];
      const detail = [...sum.detail];
      const chainStats: NodeStat[] = [];
      let hcm: envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager | undefined;
      for (const f of fc.filters ?? []) {
        const tc = f.typed_config as Json | undefined;
        if (tc?.['@type'] === HCM_TYPE) {
          hcm = tc;
          const rds = hcm?.rds?.route_config_name;
          detail.push(rds !== undefined ? `HTTP, routes ${rds}` : 'HTTP, inline routes');
          chainStats.push(
            ...statsOf(`http.${hcm?.stat_prefix ?? ''}.`, ['downstream_rq_total', 'downstream_rq_2xx', 'downstream_rq_4xx', 'downstream_rq_5xx', 'no_route']),
          );
        } else if (tc?.['@type'] === TCP_PROXY_TYPE) {
          const tcp = tc as envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
          detail.push('TCP proxy');
          chainStats.push(...statsOf(`tcp.${tcp.stat_prefix ?? ''}.`, ['downstream_cx_total', 'downstream_cx_no_route']));
          // explain needs a Host: the SNI a passthrough chain matches stands for it.
          const explain = [...chainExplain, '--host', sum.sni ?? ANY_HOST].map(shellWord).join(' ');
          if (tcp.cluster !== undefined) reach(fid, tcp.cluster, explain);
          const wc = tcp.weighted_clusters?.clusters ?? [];
          const total = wc.reduce((s, c) => s + (c.weight ?? 0), 0);
          for (const c of wc)
            if (c.name !== undefined) reach(fid, c.name, explain, total > 0 ? `${Math.round(((c.weight ?? 0) * 1000) / total) / 10}%` : undefined);
        } else if (f.name) detail.push(f.name);
      }
      const maskField = entry.state ? `${entry.state}.listener.${field}` : `listener.${field}`;
      const chainNode = add({
        id: fid,
        kind: 'filter_chain',
        name: sum.name,
        detail,
        stats: chainStats,
        configDump: dumpQuery([...listenerDump, ['mask', maskField]]),
        explain: hcm ? '' : [...chainExplain, '--host', sum.sni ?? ANY_HOST].map(shellWord).join(' '),
      });
      link(lid, fid);
      if (hcm) {
        const rdsName = hcm.rds?.route_config_name;
        const rc: RouteConfiguration | undefined = rdsName !== undefined ? routeConfigs.get(rdsName) : hcm.route_config;
        // A route configuration is one dump element: virtual hosts and routes link to it (Envoy cannot dump less).
        const rcKey = rdsName ?? `${lname}#${i}`;
        const rcDump =
          rdsName !== undefined
            ? dumpQuery([
                ['resource', 'dynamic_route_configs'],
                ['name_regex', re2Literal(rdsName)],
              ])
            : dumpQuery(listenerDump);
        for (const vh of rc?.virtual_hosts ?? []) {
          const v = addVirtualHost(vh, rcKey, rdsName, rcDump, fid, chainExplain);
          // An HTTP filter chain's command is its first virtual host's: explain needs a Host.
          if (!chainNode.explain) chainNode.explain = v.explain;
        }
      }
      if (!listenerNode.explain) listenerNode.explain = chainNode.explain;
    });
  }

  function addVirtualHost(vh: VirtualHost, rcKey: string, rdsName: string | undefined, rcDump: string, from: string, chainExplain: string[]): RouteMapNode {
    const vname = vh.name ?? '';
    const vid = `vhost:${rcKey}/${vname}`;
    const domains = vh.domains ?? [];
    const host = hostFor(domains);
    const hostArgs = host !== undefined ? ['--host', host] : [];
    const shown = domains.slice(0, 4).join(', ') + (domains.length > 4 ? ` (+${domains.length - 4})` : '');
    const existed = byId.has(vid);
    const node = add({
      id: vid,
      kind: 'virtual_host',
      name: vname,
      detail: [`domains ${shown}`, ...(rdsName !== undefined ? [`route configuration ${rdsName}`] : [])],
      stats: [],
      configDump: rcDump,
      explain: [...chainExplain, ...hostArgs].map(shellWord).join(' '),
    });
    link(from, vid);
    if (existed) return node;
    (vh.routes ?? []).forEach((r, i) => {
      const rid = `route:${rcKey}/${vname}/${i}`;
      const path = pathFor(r.match);
      const args = [...chainExplain, ...hostArgs, ...(path !== undefined ? ['--path', path] : [])];
      for (const h of r.match?.headers ?? []) {
        const v = exactHeader(h);
        if (v === undefined || h.name === undefined) continue;
        if (h.name === ':method') args.push('--method', v);
        else if (!h.name.startsWith(':')) args.push('--header', `${h.name}=${v}`);
      }
      const explain = args.map(shellWord).join(' ');
      const src = istioSource(r);
      add({
        id: rid,
        kind: 'route',
        name: r.name ? r.name : matchSummary(r.match),
        detail: [...(r.name ? [matchSummary(r.match)] : []), ...actionSummary(r), ...(src !== undefined ? [src] : [])],
        stats: [],
        configDump: rcDump,
        explain,
      });
      link(vid, rid);
      for (const t of routeTargets(r)) reach(rid, t.cluster, explain, t.label);
    });
    return node;
  }

  const statuses = new Map<string, ClusterStatus>();
  for (const s of clusters.cluster_statuses ?? []) if (s.name !== undefined) statuses.set(s.name, s);
  const rest = [...clusterEntries.keys()].filter((n) => !referenced.includes(n)).sort();
  for (const name of [...referenced, ...rest]) {
    const entry = clusterEntries.get(name);
    const hosts = statuses.get(name)?.host_statuses ?? [];
    const explain = clusterExplain.get(name) ?? '';
    const cid = clusterNodeId(name);
    const c = entry?.cluster;
    const statName = c?.alt_stat_name ? c.alt_stat_name : name;
    const edsResource = endpointResourceOf(configs, name);
    add({
      id: cid,
      kind: 'cluster',
      name,
      detail: [
        ...(c ? [`type ${c.cluster_type?.name ?? c.type ?? 'STATIC'}`, `lb ${c.lb_policy ?? 'ROUND_ROBIN'}`] : ['not in the configuration']),
        ...(c?.outlier_detection ? ['outlier detection'] : []),
        ...(!referenced.includes(name) ? ['no route sends here'] : []),
      ],
      stats: c
        ? statsOf(`cluster.${statName}.`, ['upstream_rq_total', 'upstream_rq_5xx', 'upstream_cx_none_healthy', 'membership_healthy', 'membership_total'])
        : [],
      health: entry ? clusterHealth(hosts) : 'missing',
      configDump: entry
        ? dumpQuery([
            ['resource', entry.resource],
            ['name_regex', re2Literal(name)],
          ])
        : '',
      explain,
    });
    for (const h of hosts) {
      const key = hostKey(h);
      const eid = `endpoint:${name}/${key}`;
      const value = (n: string): number => Number(h.stats?.find((s) => s.name === n)?.value ?? 0);
      const eds = h.health_status?.eds_health_status ?? 'HEALTHY';
      add({
        id: eid,
        kind: 'endpoint',
        name: key,
        detail: [...(h.hostname ? [h.hostname] : []), ...(h.weight !== undefined && h.weight !== 1 ? [`weight ${h.weight}`] : [])],
        stats: ['rq_total', 'rq_error', 'rq_active', 'cx_active'].map((label) => ({ label, stat: '', value: value(label) })),
        health: hostPasses(h) ? 'healthy' : 'unhealthy',
        hostHealth: `${eds}${h.health_status?.failed_outlier_check ? ' failed_outlier_check' : ''}`,
        configDump:
          edsResource !== undefined
            ? dumpQuery([
                ['resource', edsResource],
                ['name_regex', re2Literal(name)],
                ['include_eds', ''],
              ])
            : dumpQuery([
                ['resource', entry?.resource ?? 'dynamic_active_clusters'],
                ['name_regex', re2Literal(name)],
              ]),
        explain,
      });
      link(cid, eid);
    }
  }
  return { nodes, edges };
}
