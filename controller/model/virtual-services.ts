// VirtualServices as istiod indexes them for gateways (push_context.go initVirtualServices,
// VirtualServicesForGateway; virtualservice.go ResolveVirtualServiceShortnames).
import type { Config } from './config.ts';
import { compareByCreation } from './config.ts';
import type { Destination, HTTPMatchRequest, HTTPRoute, StringMatch, VirtualServiceSpec } from './istio-types.ts';
import { resolveGatewayName, resolveShortName } from './host.ts';
import { ROUTE_SEMANTICS_ANNOTATION } from './gateway-api.ts';

/** A VirtualService with short names resolved: hosts, destinations, mirrors and gateway names. */
export type VirtualServiceConfig = Config<VirtualServiceSpec> & {
  /** Resolved `gateways` ( `["mesh"]` when empty: sidecars only, never a gateway). */
  gatewayNames: readonly string[];
  /** Converted from a Gateway API route: built with its semantics (model.UseGatewaySemantics). */
  gatewaySemantics: boolean;
};

function resolveDestination(d: Destination, ns: string): Destination {
  return { ...d, host: resolveShortName(d.host, ns) };
}

export function resolveVirtualService(c: Config<VirtualServiceSpec>): VirtualServiceConfig {
  const ns = c.namespace;
  const spec = c.spec;
  const http = spec.http?.map((r): HTTPRoute => {
    const out: HTTPRoute = { ...r };
    // The proto name is the same field for istiod's decoder: one name from here on.
    if (out.mirrorPercent === undefined && r.mirror_percent !== undefined) out.mirrorPercent = r.mirror_percent;
    delete out.mirror_percent;
    if (r.match) out.match = r.match.map((m) => (m.gateways ? { ...m, gateways: m.gateways.map((g) => resolveGatewayName(g, ns)) } : m));
    if (r.route) out.route = r.route.map((d) => ({ ...d, destination: resolveDestination(d.destination, ns) }));
    if (r.mirror) out.mirror = resolveDestination(r.mirror, ns);
    if (r.mirrors) out.mirrors = r.mirrors.map((m) => ({ ...m, destination: resolveDestination(m.destination, ns) }));
    return out;
  });
  const resolved: VirtualServiceSpec = { ...spec, hosts: (spec.hosts ?? []).map((h) => resolveShortName(h, ns)) };
  if (http) resolved.http = http;
  for (const k of ['tcp', 'tls'] as const) {
    const routes = spec[k];
    if (routes) {
      resolved[k] = routes.map((r) => {
        const out = { ...r };
        if (r.route) out.route = r.route.map((d) => ({ ...d, destination: resolveDestination(d.destination, ns) }));
        if (r.match) out.match = r.match.map((m) => (m.gateways ? { ...m, gateways: m.gateways.map((g) => resolveGatewayName(g, ns)) } : m));
        return out;
      });
    }
  }
  const gatewayNames = spec.gateways?.length ? spec.gateways.map((g) => resolveGatewayName(g, ns)) : ['mesh'];
  return { ...c, spec: resolved, gatewayNames, gatewaySemantics: c.annotations[ROUTE_SEMANTICS_ANNOTATION] === 'gateway' };
}

/**
 * VirtualServices bound to `gatewayName` as seen from a gateway pod in `proxyNamespace`: the private ones
 * of that namespace, then those exported to it, then public ones; each group in creation order.
 * A VS with `exportTo: ["."]` in `default` is thus invisible to an `istio-system` gateway pod.
 */
export function virtualServicesForGateway(all: readonly VirtualServiceConfig[], proxyNamespace: string, gatewayName: string): VirtualServiceConfig[] {
  const priv: VirtualServiceConfig[] = [];
  const exported: VirtualServiceConfig[] = [];
  const pub: VirtualServiceConfig[] = [];
  const pubOwn: VirtualServiceConfig[] = [];
  for (const vs of all) {
    if (!vs.gatewayNames.includes(gatewayName)) continue;
    const exportTo = vs.spec.exportTo?.length ? vs.spec.exportTo : ['*'];
    if (exportTo.includes('*')) {
      // Same-namespace Gateway API routes come first among the public ones (the "consumer override" preference).
      if (vs.gatewaySemantics && vs.namespace === proxyNamespace) pubOwn.push(vs);
      else pub.push(vs);
      continue;
    }
    if (exportTo.includes('~')) continue;
    const set = new Set(exportTo.map((e) => (e === '.' ? vs.namespace : e)));
    if (!set.has(proxyNamespace)) continue;
    if (vs.namespace === proxyNamespace) priv.push(vs);
    else exported.push(vs);
  }
  for (const l of [priv, exported, pubOwn, pub]) l.sort(compareByCreation);
  return [...priv, ...exported, ...pubOwn, ...pub];
}

// ---- delegation (virtualservice_controller.go mergeVirtualServices, virtualservice.go MergeHTTPRoutes) ----

/** A delegate VirtualService has no hosts: it is only reachable through a root's `http[].delegate`. */
function isDelegate(vs: Config<VirtualServiceSpec>): boolean {
  return !vs.spec.hosts || vs.spec.hosts.length === 0;
}

/** Delegate visibility: its exportTo (default "*"), "." meaning its own namespace. */
function delegateExportedTo(d: VirtualServiceConfig, namespace: string): boolean {
  const e = d.spec.exportTo?.length ? d.spec.exportTo : ['*'];
  return e.includes('*') || e.includes(namespace) || (e.includes('.') && d.namespace === namespace);
}

/** stringMatchConflict: the delegate's match must be a subset of the root's (regexes only against nothing). */
function stringMatchConflict(root: StringMatch | undefined, leaf: StringMatch | undefined): boolean {
  if (!root || !leaf) return false;
  if (root.regex && (leaf.regex || leaf.prefix || leaf.exact)) return true;
  if (leaf.regex && (root.regex || root.prefix || root.exact)) return true;
  if (root.exact) {
    if (leaf.prefix) return true;
    return leaf.exact !== root.exact;
  }
  if (root.prefix) {
    if (leaf.prefix) return !leaf.prefix.startsWith(root.prefix);
    if (leaf.exact) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}

function hasConflict(root: HTTPMatchRequest, leaf: HTTPMatchRequest): boolean {
  for (const k of ['uri', 'scheme', 'method', 'authority'] as const) if (stringMatchConflict(root[k], leaf[k])) return true;
  for (const k of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    for (const [name, m] of Object.entries(leaf[k] ?? {})) if (stringMatchConflict(root[k]?.[name], m)) return true;
  }
  if ((root.ignoreUriCase ?? false) !== (leaf.ignoreUriCase ?? false)) return true;
  if (root.port && leaf.port && root.port !== leaf.port) return true;
  if (root.sourceNamespace && leaf.sourceNamespace !== root.sourceNamespace) return true;
  for (const [k, v] of Object.entries(leaf.sourceLabels ?? {})) {
    const rv = root.sourceLabels?.[k];
    if (rv !== undefined && rv !== v) return true;
  }
  if (root.gateways?.length && leaf.gateways?.length) {
    if (root.gateways.length < leaf.gateways.length) return true;
    if (leaf.gateways.some((g) => !root.gateways?.includes(g))) return true;
  }
  return false;
}

function mergeMaps<T>(a: Record<string, T> | undefined, b: Record<string, T> | undefined): Record<string, T> | undefined {
  if (!a && !b) return undefined;
  return { ...a, ...b };
}

function joinNames(root: string | undefined, leaf: string | undefined): string | undefined {
  if (!leaf) return root;
  return root ? `${root}-${leaf}` : leaf;
}

function mergeMatch(root: HTTPMatchRequest, leaf: HTTPMatchRequest): HTTPMatchRequest {
  const out: HTTPMatchRequest = { ...leaf };
  const name = joinNames(root.name, leaf.name);
  if (name !== undefined) out.name = name;
  for (const k of ['uri', 'scheme', 'method', 'authority'] as const) {
    const v = leaf[k] ?? root[k];
    if (v) out[k] = v;
  }
  for (const k of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    const v = mergeMaps(root[k], leaf[k]);
    if (v) out[k] = v;
  }
  const labels = mergeMaps(root.sourceLabels, leaf.sourceLabels);
  if (labels) out.sourceLabels = labels;
  if (!leaf.port && root.port) out.port = root.port;
  if (!leaf.sourceNamespace && root.sourceNamespace) out.sourceNamespace = root.sourceNamespace;
  if (!leaf.gateways?.length && root.gateways) out.gateways = root.gateways;
  if (!leaf.statPrefix && root.statPrefix) out.statPrefix = root.statPrefix;
  return out;
}

/** mergeHTTPMatchRequests: every delegate match must fit at least one root match; undefined = conflict. */
function mergeMatches(root: readonly HTTPMatchRequest[] | undefined, leaf: readonly HTTPMatchRequest[] | undefined): HTTPMatchRequest[] | undefined {
  if (!root?.length) return leaf ? [...leaf] : [];
  if (!leaf?.length) return [...root];
  const out: HTTPMatchRequest[] = [];
  for (const sub of leaf) {
    let found = false;
    for (const r of root) {
      if (hasConflict(r, sub)) continue;
      out.push(mergeMatch(r, sub));
      found = true;
    }
    if (!found) return undefined;
  }
  return out.length ? out : undefined;
}

/** mergeHTTPRoute: the delegate's fields win; the root fills the gaps; names join as `root-delegate`. */
function mergeRule(root: HTTPRoute, leaf: HTTPRoute): HTTPRoute | undefined {
  const match = mergeMatches(root.match, leaf.match);
  if (!match) return undefined;
  const out: HTTPRoute = { ...leaf };
  if (match.length) out.match = match;
  else delete out.match;
  const name = joinNames(root.name, leaf.name);
  if (name !== undefined) out.name = name;
  for (const k of [
    'rewrite',
    'directResponse',
    'timeout',
    'retries',
    'fault',
    'mirror',
    'mirrorPercent',
    'mirrorPercentage',
    'corsPolicy',
    'mirrors',
    'headers',
  ] as const) {
    if (out[k] === undefined && root[k] !== undefined) (out as Record<string, unknown>)[k] = root[k];
  }
  return out;
}

export interface DelegateProblem {
  root: VirtualServiceConfig;
  index: number;
  message: string;
}

/**
 * mergeVirtualServices: delegates (no hosts) leave the list; each root rule with `delegate` is replaced by
 * the delegate's rules merged with it (conflicting ones dropped). A delegate that does not exist or is not
 * exported to the root's namespace drops the rule. Only one level: rules of a delegate that delegate again
 * are kept as they are and never translated. Short names were resolved per object before (a delegate's in
 * its own namespace, as istiod does since istio#30387).
 */
export function mergeDelegates(all: readonly VirtualServiceConfig[]): { virtualServices: VirtualServiceConfig[]; problems: DelegateProblem[] } {
  const delegates = new Map<string, VirtualServiceConfig>();
  for (const vs of all) if (isDelegate(vs)) delegates.set(`${vs.namespace}/${vs.name}`, vs);
  const out: VirtualServiceConfig[] = [];
  const problems: DelegateProblem[] = [];
  for (const vs of all) {
    if (isDelegate(vs)) continue;
    const http = vs.spec.http;
    if (!http?.some((r) => r.delegate)) {
      out.push(vs);
      continue;
    }
    const merged: HTTPRoute[] = [];
    http.forEach((r, index) => {
      if (!r.delegate) {
        merged.push(r);
        return;
      }
      const ns = r.delegate.namespace || vs.namespace;
      const d = delegates.get(`${ns}/${r.delegate.name ?? ''}`);
      if (!d) {
        problems.push({ root: vs, index, message: `delegate virtual service ${ns}/${r.delegate.name ?? ''} not found: the rule is ignored` });
        return;
      }
      if (!delegateExportedTo(d, vs.namespace)) {
        problems.push({ root: vs, index, message: `delegate virtual service ${ns}/${d.name} is not exported to ${vs.namespace}: the rule is ignored` });
        return;
      }
      const root: HTTPRoute = { ...r };
      delete root.delegate;
      for (const leaf of d.spec.http ?? []) {
        const m = mergeRule(root, leaf);
        if (m) merged.push(m);
      }
    });
    out.push({ ...vs, spec: { ...vs.spec, http: merged } });
  }
  return { virtualServices: out, problems };
}
