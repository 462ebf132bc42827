// Which DestinationRule applies to a host for a gateway proxy (push_context.go destinationRule,
// destination_rule.go mergeDestinationRule), and the policy layering of cluster_builder.go.
import type { Config } from './config.ts';
import { compareByCreation } from './config.ts';
import type { DestinationRuleSpec, Subset, TrafficPolicy } from './istio-types.ts';
import { resolveShortName, subsetOf } from './host.ts';
import { parseExportTo, visibleTo } from './exports.ts';
import { isSubset, type Labels } from './labels.ts';

const ROOT_NAMESPACE = 'istio-system';

/** The effective rule for a host: possibly several DRs merged (subsets concatenated, first policy wins). */
export interface EffectiveDestinationRule {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets: Subset[];
  /** The DRs merged, first first: `config` metadata names the first one. */
  from: Config<DestinationRuleSpec>[];
  /** Subset names dropped as duplicates (istiod's DuplicatedSubsets metric). */
  duplicateSubsets: string[];
}

export interface DestinationRuleIndex {
  /** `serviceNamespace`: the namespace of the Service/ServiceEntry defining the host, when known. */
  lookup(hostname: string, serviceNamespace?: string): EffectiveDestinationRule | undefined;
}

function mostSpecific(rules: readonly Config<DestinationRuleSpec>[], hostname: string): Config<DestinationRuleSpec>[] {
  // Exact host first; otherwise the longest wildcard host covering it (MostSpecificHostMatch).
  const exact = rules.filter((r) => r.spec.host === hostname);
  if (exact.length > 0) return exact;
  let best: string | undefined;
  for (const r of rules) {
    const h = r.spec.host;
    if (!h.startsWith('*') || !subsetOf(hostname, h)) continue;
    if (best === undefined || h.length > best.length) best = h;
  }
  return best === undefined ? [] : rules.filter((r) => r.spec.host === best);
}

function merge(rules: Config<DestinationRuleSpec>[], hostname: string): EffectiveDestinationRule {
  const out: EffectiveDestinationRule = { host: hostname, subsets: [], from: rules, duplicateSubsets: [] };
  const seen = new Set<string>();
  for (const r of rules) {
    if (!out.trafficPolicy && r.spec.trafficPolicy) out.trafficPolicy = r.spec.trafficPolicy;
    for (const s of r.spec.subsets ?? []) {
      if (seen.has(s.name)) out.duplicateSubsets.push(s.name);
      else {
        seen.add(s.name);
        out.subsets.push(s);
      }
    }
  }
  return out;
}

/** exportTo is only the rule's own namespace (`.` or its name): isPrivateOnly in setDestinationRules. */
function privateOnly(r: Config<DestinationRuleSpec>): boolean {
  const e = r.spec.exportTo ?? [];
  return e.length === 1 && (e[0] === '.' || e[0] === r.namespace);
}

/** Whether the rule serves proxies of its own namespace (namespaceLocal): unset, `*`, `.` or its namespace. */
function namespaceLocal(r: Config<DestinationRuleSpec>): boolean {
  const e = r.spec.exportTo ?? [];
  return e.length === 0 || e.includes('*') || e.includes('.') || e.includes(r.namespace);
}

/**
 * Lookup relative to the gateway pod's namespace (PushContext.destinationRule): the rules of that namespace, for a
 * proxy in the root namespace only its private ones (so that a catch-all rule there does not shadow the service's
 * own); then the rules the service's namespace exports, then those the root namespace exports. In each, the most
 * specific host wins before exportTo is looked at. Short hosts resolve in the DR's own namespace.
 */
export function indexDestinationRules(all: readonly Config<DestinationRuleSpec>[], proxyNamespace: string, proxyLabels: Labels): DestinationRuleIndex {
  const rules = all
    .filter((r) => !r.spec.workloadSelector || isSubset(r.spec.workloadSelector.matchLabels, proxyLabels))
    .map((r) => ({ ...r, spec: { ...r.spec, host: resolveShortName(r.spec.host, r.namespace) } }))
    .sort(compareByCreation);
  const local =
    proxyNamespace === ROOT_NAMESPACE
      ? rules.filter((r) => r.namespace === ROOT_NAMESPACE && privateOnly(r))
      : rules.filter((r) => r.namespace === proxyNamespace && namespaceLocal(r));
  const exportedFrom = (namespace: string, hostname: string): Config<DestinationRuleSpec>[] =>
    mostSpecific(
      rules.filter((r) => r.namespace === namespace && !privateOnly(r)),
      hostname,
    ).filter((r) => visibleTo(parseExportTo(r.spec.exportTo, r.namespace), proxyNamespace));
  const cache = new Map<string, EffectiveDestinationRule | undefined>();
  return {
    lookup(hostname, serviceNamespace) {
      const svcNs = serviceNamespace ?? /^[^.]+\.([^.]+)\.svc\./.exec(hostname)?.[1];
      const key = `${hostname}|${svcNs ?? ''}`;
      if (cache.has(key)) return cache.get(key);
      let found = mostSpecific(local, hostname);
      if (found.length === 0 && svcNs) found = exportedFrom(svcNs, hostname);
      if (found.length === 0) found = exportedFrom(ROOT_NAMESPACE, hostname);
      const eff = found.length > 0 ? merge(found, hostname) : undefined;
      cache.set(key, eff);
      return eff;
    },
  };
}

/** Port-level settings replace the whole top-level policy for that port (MergeTrafficPolicy). */
export function policyForPort(tp: TrafficPolicy | undefined, port: number): TrafficPolicy | undefined {
  if (!tp) return undefined;
  const pls = tp.portLevelSettings?.find((p) => p.port?.number === port);
  if (!pls) {
    const { portLevelSettings: _omit, ...rest } = tp;
    return rest;
  }
  const out: TrafficPolicy = {};
  if (pls.loadBalancer) out.loadBalancer = pls.loadBalancer;
  if (pls.connectionPool) out.connectionPool = pls.connectionPool;
  if (pls.outlierDetection) out.outlierDetection = pls.outlierDetection;
  if (pls.tls) out.tls = pls.tls;
  return out;
}

/**
 * Subset policy overrides the port-resolved top-level policy field by field; if the subset has its own
 * port-level entry for this port, its four fields replace wholesale (MergeSubsetTrafficPolicy).
 */
export function mergeSubsetPolicy(base: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number): TrafficPolicy | undefined {
  const b = policyForPort(base, port);
  if (!subset) return b;
  const hasPortLevel = subset.portLevelSettings?.some((p) => p.port?.number === port) ?? false;
  const s = policyForPort(subset, port);
  if (!b) return s;
  if (!s) return b;
  const out: TrafficPolicy = { ...b };
  for (const k of ['connectionPool', 'outlierDetection', 'loadBalancer', 'tls'] as const) {
    if (s[k] !== undefined || hasPortLevel) {
      if (s[k] === undefined) delete out[k];
      else (out as Record<string, unknown>)[k] = s[k];
    }
  }
  if (s.retryBudget) out.retryBudget = s.retryBudget;
  return out;
}
