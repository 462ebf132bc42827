// Puts both sides' resources in one canonical form and lists where they differ. What Envoy's behaviour does
// not depend on is not compared: list order where Envoy selects by match (filter chains, virtual hosts),
// the spelling of durations, an Any's wrapper. Everything else is, and a difference is reported with the
// path to it; deliberate differences are allowed in allowlist.ts, each with its reason.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

export interface Resources {
  listeners: Record<string, unknown>[];
  routes: Record<string, unknown>[];
  clusters: Record<string, unknown>[];
  endpoints: Record<string, unknown>[];
  /** `Kind namespace/name` of every object the control plane refused, sorted. */
  rejected: string[];
}

export interface Difference {
  /** `listeners`, `routes`, `clusters`, `endpoints` or `rejected`. */
  type: string;
  /** The resource's name (a cluster load assignment's cluster_name). */
  resource: string;
  /** Where inside it: `.filter_chains[<match>].filters[envoy.filters.network.http_connection_manager].typed_config.x`. */
  path: string;
  istiod: Json | undefined;
  meshgate: Json | undefined;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const DURATION = /^-?\d+(\.\d+)?s$/;

/** Canonical JSON: durations by value, objects with sorted keys. */
function canon(v: unknown): Json {
  if (typeof v === 'string' && DURATION.test(v)) return `${Number(v.slice(0, -1))}s`;
  if (Array.isArray(v)) return v.map(canon);
  if (isObj(v)) {
    const out: Obj = {};
    for (const k of Object.keys(v).sort()) if (v[k] !== undefined) out[k] = canon(v[k]);
    return out;
  }
  return v as Json;
}

const stable = (v: unknown): string => JSON.stringify(canon(v));

/**
 * Lists whose items Envoy picks by a key rather than by position are compared as maps from that key:
 * filter chains by their match, virtual hosts by name, named filters by name. Their order is not compared,
 * except for filters (see walk).
 */
function keyOf(parentKey: string, item: Json): string | undefined {
  if (!isObj(item)) return undefined;
  if (parentKey === 'filter_chains') {
    const m = isObj(item.filter_chain_match) ? { ...item.filter_chain_match } : {};
    for (const k of ['server_names', 'application_protocols', 'transport_protocol']) if (Array.isArray(m[k])) m[k] = [...(m[k] as string[])].sort();
    return `match=${stable(m)}`;
  }
  if (parentKey === 'virtual_hosts' || parentKey === 'filters' || parentKey === 'http_filters' || parentKey === 'listener_filters') {
    return typeof item.name === 'string' ? item.name : undefined;
  }
  // A route's header and query parameter matchers are AND-ed: their order means nothing (istiod builds the
  // query parameters from a Go map, in a different order on every run).
  if (parentKey === 'headers' || parentKey === 'query_parameters') return typeof item.name === 'string' ? item.name : undefined;
  return undefined;
}

/** Filter lists, where one filter may come several times (one RBAC filter per AuthorizationPolicy action). */
const FILTER_LISTS = new Set(['filters', 'http_filters', 'listener_filters']);

/**
 * A filter's key is its name; a name repeated in a filter list is numbered by occurrence (`name#2`), so such
 * filters are compared with each other in order, as Envoy runs them.
 */
function numberRepeats(parentKey: string, keys: (string | undefined)[]): (string | undefined)[] {
  if (!FILTER_LISTS.has(parentKey)) return keys;
  const seen = new Map<string, number>();
  return keys.map((k) => {
    if (k === undefined) return k;
    const n = (seen.get(k) ?? 0) + 1;
    seen.set(k, n);
    return n === 1 ? k : `${k}#${n}`;
  });
}

/** Lists where order carries no meaning at all and items are plain values. */
const UNORDERED = new Set(['domains', 'server_names', 'application_protocols', 'subject_alt_names', 'match_subject_alt_names', 'alpn_protocols']);

function walk(type: string, resource: string, path: string, parentKey: string, a: Json | undefined, b: Json | undefined, out: Difference[]): void {
  if (a === undefined && b === undefined) return;
  if (a === undefined || b === undefined) {
    out.push({ type, resource, path, istiod: a, meshgate: b });
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const keys = (l: Json[]) =>
      numberRepeats(
        parentKey,
        l.map((x) => keyOf(parentKey, x)),
      );
    const ka = keys(a);
    const kb = keys(b);
    if (ka.every((k) => k !== undefined) && kb.every((k) => k !== undefined) && new Set(ka).size === ka.length && new Set(kb).size === kb.length) {
      // Envoy runs filters in order: those both sides have must come in the same order.
      if (FILTER_LISTS.has(parentKey)) {
        const oa = ka.filter((k) => kb.includes(k));
        const ob = kb.filter((k) => ka.includes(k));
        if (oa.join('\n') !== ob.join('\n')) out.push({ type, resource, path: `${path}(order)`, istiod: oa, meshgate: ob });
      }
      const ma = new Map(ka.map((k, i) => [k, a[i]]));
      const mb = new Map(kb.map((k, i) => [k, b[i]]));
      for (const k of [...new Set([...ka, ...kb])].sort()) walk(type, resource, `${path}[${k}]`, '', ma.get(k), mb.get(k), out);
      return;
    }
    if (UNORDERED.has(parentKey)) {
      const sa = a.map(stable).sort();
      const sb = b.map(stable).sort();
      if (sa.join('\n') !== sb.join('\n')) out.push({ type, resource, path, istiod: a, meshgate: b });
      return;
    }
    if (a.length !== b.length) {
      out.push({ type, resource, path, istiod: a, meshgate: b });
      return;
    }
    a.forEach((x, i) => walk(type, resource, `${path}[${i}]`, parentKey, x, b[i], out));
    return;
  }
  if (isObj(a) && isObj(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) walk(type, resource, `${path}.${k}`, k, a[k], b[k], out);
    return;
  }
  if (stable(a) !== stable(b)) out.push({ type, resource, path, istiod: a, meshgate: b });
}

function byName(type: string, list: Record<string, unknown>[]): Map<string, Json> {
  const key = type === 'endpoints' ? 'cluster_name' : 'name';
  const m = new Map<string, Json>();
  for (const r of list) {
    const { ['@type']: _, ...rest } = r;
    m.set(String(r[key]), canon(rest));
  }
  return m;
}

/** Every difference between istiod's resources and meshgate's, resource by resource. */
export function compare(istiod: Resources, meshgate: Resources): Difference[] {
  const out: Difference[] = [];
  for (const type of ['listeners', 'routes', 'clusters', 'endpoints'] as const) {
    const a = byName(type, istiod[type]);
    const b = byName(type, meshgate[type]);
    for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) walk(type, name, '', '', a.get(name), b.get(name), out);
  }
  const ra = new Set(istiod.rejected);
  const rb = new Set(meshgate.rejected);
  for (const o of [...new Set([...ra, ...rb])].sort()) {
    if (ra.has(o) !== rb.has(o)) out.push({ type: 'rejected', resource: o, path: '', istiod: ra.has(o), meshgate: rb.has(o) });
  }
  return out;
}

export function formatDifference(d: Difference): string {
  const show = (v: Json | undefined): string => {
    if (v === undefined) return '(absent)';
    const s = JSON.stringify(v);
    return s.length > 300 ? `${s.slice(0, 300)}…` : s;
  };
  return `${d.type} ${d.resource}${d.path}: istiod ${show(d.istiod)} / meshgate ${show(d.meshgate)}`;
}
