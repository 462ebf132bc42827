// /config_dump in Envoy's format (envoy.admin.v3.*ConfigDump, proto field names, 1-space indentation as
// protobuf's JSON printer writes it), with ?resource=, ?mask=, ?name_regex= and ?include_eds: the dumps
// assembled from the main thread's configuration, then rendered for the query.
import { typedAny, unpackAny, type envoy } from '../../xds/envoy.ts';
import type { Re2 } from '../../xds/re2.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, HCM_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../xds/type-urls.ts';
import type { ListenerManager } from '../listener/listener-manager.ts';
import type { SecretStore } from '../tls/secrets.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { XdsTypeUrl } from '../xds/ads-client.ts';
import type { Json } from '../xds/json.ts';
import { DYNAMIC_RESOURCES } from './bootstrap.ts';
import { envoyStatsMatcher, type StatsPattern } from '../stats/stats-matcher.ts';

export const T = {
  bootstrap: 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump',
  clusters: 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump',
  endpoints: 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump',
  listeners: 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump',
  scopedRoutes: 'type.googleapis.com/envoy.admin.v3.ScopedRoutesConfigDump',
  routes: 'type.googleapis.com/envoy.admin.v3.RoutesConfigDump',
  secrets: 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump',
} as const;

/** Repeated fields of each dump and the message type of their elements. */
const ELEMENT_TYPES: Record<string, Record<string, string>> = {
  [T.clusters]: { static_clusters: 'StaticCluster', dynamic_active_clusters: 'DynamicCluster', dynamic_warming_clusters: 'DynamicCluster' },
  [T.endpoints]: { static_endpoint_configs: 'StaticEndpointConfig', dynamic_endpoint_configs: 'DynamicEndpointConfig' },
  [T.listeners]: { static_listeners: 'StaticListener', dynamic_listeners: 'DynamicListener' },
  [T.scopedRoutes]: { inline_scoped_route_configs: 'InlineScopedRouteConfigs', dynamic_scoped_route_configs: 'DynamicScopedRouteConfigs' },
  [T.routes]: { static_route_configs: 'StaticRouteConfig', dynamic_route_configs: 'DynamicRouteConfig' },
  [T.secrets]: { static_secrets: 'StaticSecret', dynamic_active_secrets: 'DynamicSecret', dynamic_warming_secrets: 'DynamicSecret' },
};

export interface DumpQuery {
  resource?: string;
  mask?: string;
  /** `name_regex=`: an RE2 pattern the whole name must match (Envoy compiles it as a safe_regex matcher). */
  nameRegex?: Pick<Re2, 'fullMatch'>;
}

export interface DumpResult {
  status: number;
  body: string;
}

/** Name of a dump element, for name_regex. */
function elementName(e: Json): string {
  const inner = (e.cluster ?? e.listener ?? e.route_config ?? e.endpoint_config ?? e.secret) as Json | undefined;
  if (typeof e.name === 'string') return e.name;
  if (inner) {
    const n = inner.name ?? inner.cluster_name;
    return typeof n === 'string' ? n : '';
  }
  return '';
}

function applyMask(o: Json, paths: string[]): Json {
  const out: Json = {};
  for (const p of paths) {
    const [head, ...rest] = p.split('.');
    if (head === undefined || !(head in o)) continue;
    const v = o[head];
    if (rest.length === 0) out[head] = v;
    else if (Array.isArray(v)) out[head] = (v as unknown[]).map((x): unknown => (typeof x === 'object' && x ? applyMask(x as Json, [rest.join('.')]) : x));
    else if (typeof v === 'object' && v) out[head] = { ...(out[head] ?? {}), ...applyMask(v as Json, [rest.join('.')]) };
  }
  return out;
}

export function renderConfigDump(configs: Json[], q: DumpQuery): DumpResult {
  let dumps = configs;
  if (q.nameRegex) {
    const re = q.nameRegex;
    dumps = dumps.map((d) => {
      const t = String(d['@type']);
      const fields = ELEMENT_TYPES[t] ?? {};
      const out: Json = { ...d };
      for (const f of Object.keys(fields)) {
        const v = out[f];
        if (Array.isArray(v)) out[f] = (v as Json[]).filter((e) => re.fullMatch(elementName(e)));
      }
      return out;
    });
  }
  const maskPaths = q.mask
    ? q.mask
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;
  if (q.resource !== undefined) {
    const out: Json[] = [];
    let found = false;
    for (const d of dumps) {
      const t = String(d['@type']);
      const elementType = ELEMENT_TYPES[t]?.[q.resource];
      if (elementType) {
        found = true;
        for (const e of (d[q.resource] as Json[] | undefined) ?? []) {
          const masked = maskPaths ? applyMask(e, maskPaths) : e;
          out.push({ '@type': `${t}.${elementType}`, ...masked });
        }
      } else if (q.resource in d) {
        return { status: 400, body: `${q.resource} is not a repeated field. Use ?mask=${q.resource} to get only this field` };
      }
    }
    if (!found) return { status: 404, body: `${q.resource} not found in config dump` };
    return { status: 200, body: JSON.stringify({ configs: out }, null, 1) + '\n' };
  }
  if (maskPaths) dumps = dumps.map((d) => ({ '@type': d['@type'], ...applyMask(d, maskPaths) }));
  return { status: 200, body: JSON.stringify({ configs: dumps }, null, 1) + '\n' };
}

/** What the dumps are assembled from: the main thread's configuration and the bootstrap. */
export interface ConfigDumpSources {
  node: envoy.config.core.v3.Node;
  /** When the proxy started (Date.now()): the bootstrap's last_updated. */
  started: number;
  admin: { host: string; port: number };
  clusters: ClusterManager;
  listeners: ListenerManager;
  secrets: SecretStore;
  /** The last version of an xDS type the client accepted ('' before any). */
  version(typeUrl: XdsTypeUrl): string;
  /** The stats inclusion list the metrics port applies: the bootstrap's stats_config.stats_matcher. */
  statsPatterns?: readonly StatsPattern[];
}

type Listener = envoy.config.listener.v3.Listener;

/** The route configuration inlined in a static listener's HTTP connection manager. */
function inlineRouteConfig(l: Listener): envoy.config.route.v3.RouteConfiguration | undefined {
  const hcm = l.filter_chains?.[0]?.filters?.[0]?.typed_config;
  return hcm ? unpackAny(hcm, HCM_TYPE).route_config : undefined;
}

/** Envoy's dumps in its order: bootstrap, clusters, endpoints (include_eds), listeners, scoped routes, routes, secrets. */
export function assembleConfigDump(s: ConfigDumpSources, includeEds: boolean): Json[] {
  const { clusters, listeners } = s;
  const staticClusters = clusters.staticClusters();
  const out: Json[] = [];
  const bootstrap: envoy.admin.v3.BootstrapConfigDump = {
    bootstrap: {
      node: s.node,
      static_resources: {
        listeners: listeners.staticListeners.map((l) => l.json),
        clusters: staticClusters.map((c) => c.json),
      },
      dynamic_resources: DYNAMIC_RESOURCES,
      admin: { address: { socket_address: { address: s.admin.host, port_value: s.admin.port } } },
      ...(s.statsPatterns ? { stats_config: { stats_matcher: envoyStatsMatcher(s.statsPatterns) } } : {}),
    },
    last_updated: new Date(s.started).toISOString(),
  };
  out.push({ '@type': T.bootstrap, ...bootstrap });

  const dyn = clusters.dynamicActive().sort((a, b) => (a.name < b.name ? -1 : 1));
  const cdsVersion = s.version(CLUSTER_TYPE);
  const clusterDump: envoy.admin.v3.ClustersConfigDump = {
    ...(cdsVersion ? { version_info: cdsVersion } : {}),
    static_clusters: staticClusters.map((c) => ({ cluster: typedAny(CLUSTER_TYPE, c.json), last_updated: c.lastUpdated })),
    dynamic_active_clusters: dyn.map((c) => ({ version_info: c.versionInfo, cluster: typedAny(CLUSTER_TYPE, c.json), last_updated: c.lastUpdated })),
    ...(clusters.warming.size > 0
      ? {
          dynamic_warming_clusters: [...clusters.warming.values()].map((c) => ({
            version_info: c.versionInfo,
            cluster: typedAny(CLUSTER_TYPE, c.json),
            last_updated: c.lastUpdated,
          })),
        }
      : {}),
  };
  out.push({ '@type': T.clusters, ...clusterDump });

  if (includeEds) {
    const edsVersion = s.version(ENDPOINT_TYPE);
    const eds: envoy.admin.v3.EndpointsConfigDump = {
      static_endpoint_configs: staticClusters.flatMap((c) =>
        c.spec.loadAssignment ? [{ endpoint_config: typedAny(ENDPOINT_TYPE, c.spec.loadAssignment) }] : [],
      ),
      dynamic_endpoint_configs: dyn.flatMap((c) =>
        c.assignment ? [{ version_info: edsVersion, endpoint_config: typedAny(ENDPOINT_TYPE, c.assignment), last_updated: c.lastUpdated }] : [],
      ),
    };
    out.push({ '@type': T.endpoints, ...eds });
  }

  const ldsVersion = s.version(LISTENER_TYPE);
  const ldsDump: envoy.admin.v3.ListenersConfigDump = {
    ...(ldsVersion ? { version_info: ldsVersion } : {}),
    static_listeners: listeners.staticListeners.map((l) => ({ listener: typedAny(LISTENER_TYPE, l.json), last_updated: l.lastUpdated })),
    dynamic_listeners: [...listeners.active.values()].map((l) => {
      const st = { version_info: l.versionInfo, listener: typedAny(LISTENER_TYPE, l.json), last_updated: l.lastUpdated };
      return l.warm ? { name: l.spec.name, active_state: st } : { name: l.spec.name, warming_state: st };
    }),
  };
  out.push({ '@type': T.listeners, ...ldsDump });
  out.push({ '@type': T.scopedRoutes });

  const routes: envoy.admin.v3.RoutesConfigDump = {
    static_route_configs: listeners.staticListeners.map((l) => ({
      route_config: typedAny(ROUTE_TYPE, inlineRouteConfig(l.json) ?? {}),
      last_updated: l.lastUpdated,
    })),
    dynamic_route_configs: [...listeners.routes.values()].flatMap((r) => {
      const json = r.json;
      return json === undefined ? [] : [{ version_info: r.versionInfo, route_config: typedAny(ROUTE_TYPE, json), last_updated: r.lastUpdated }];
    }),
  };
  out.push({ '@type': T.routes, ...routes });
  out.push(s.secrets.configDump());
  return out;
}
