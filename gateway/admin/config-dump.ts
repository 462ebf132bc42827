// /config_dump in Envoy's format (envoy.admin.v3.*ConfigDump, proto field names, 1-space indentation as
// protobuf's JSON printer writes it), with ?resource=, ?mask=, ?name_regex= and ?include_eds.
import type { Json } from '../xds/json.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../xds/type-urls.ts';
import type { Re2 } from '../../xds/re2.ts';

export const T = {
  bootstrap: 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump',
  clusters: 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump',
  endpoints: 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump',
  listeners: 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump',
  scopedRoutes: 'type.googleapis.com/envoy.admin.v3.ScopedRoutesConfigDump',
  routes: 'type.googleapis.com/envoy.admin.v3.RoutesConfigDump',
  secrets: 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump',
} as const;

export const RESOURCE_TYPE = {
  cluster: CLUSTER_TYPE,
  listener: LISTENER_TYPE,
  route: ROUTE_TYPE,
  endpoint: ENDPOINT_TYPE,
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

export function withType(type: string, json: Json): Json {
  return { '@type': type, ...json };
}

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
