// Which DestinationRule applies to a host for a gateway proxy (push_context.go destinationRule,
// destination_rule.go mergeDestinationRule), and the policy layering of cluster_builder.go.
import type { Config } from './config.ts';
import { compareByCreation } from './config.ts';
import type { DestinationRuleSpec, Subset, TrafficPolicy } from './istio-types.ts';
import { resolveShortName, subsetOf } from './host.ts';
import { isSubset, type Labels } from './labels.ts';

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

/** A consolidated rule: DRs of one host and namespace merged (mergeDestinationRule), with the exportTo it keeps. */
interface Consolidated extends EffectiveDestinationRule {
  /** The raw exportTo entries (empty: unset). */
  exportTo: ReadonlySet<string>;
}

const sameSet = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean => a.size === b.size && [...a].every((x) => b.has(x));

function addSubsets(c: Consolidated, subsets: readonly Subset[] | undefined): void {
  for (const sub of subsets ?? []) {
    if (c.subsets.some((x) => x.name === sub.name)) c.duplicateSubsets.push(sub.name);
    else c.subsets.push(sub);
  }
}

/**
 * mergeDestinationRule (ENABLE_ENHANCED_DESTINATIONRULE_MERGE, on by default), for the rules of one index in
 * creation order: a rule merges into each earlier one of its host whose exportTo is the same or a non-empty
 * subset of its own (subsets appended unless their name is taken, the first traffic policy kept); it is also kept
 * on its own when the last earlier one could not take it.
 */
function consolidate(rules: readonly Config<DestinationRuleSpec>[]): Map<string, Consolidated[]> {
  const byHost = new Map<string, Consolidated[]>();
  for (const r of rules) {
    const exportTo = new Set(r.spec.exportTo ?? []);
    let list = byHost.get(r.spec.host);
    if (!list) byHost.set(r.spec.host, (list = []));
    // As istiod's appendSeparately: what the last earlier rule decided.
    let appendSeparately = true;
    for (const c of list) {
      appendSeparately = !sameSet(exportTo, c.exportTo) && !(c.exportTo.size > 0 && [...c.exportTo].every((e) => exportTo.has(e)));
      if (appendSeparately) continue;
      c.from.push(r);
      if (!c.trafficPolicy && r.spec.trafficPolicy) c.trafficPolicy = r.spec.trafficPolicy;
      addSubsets(c, r.spec.subsets);
    }
    if (!appendSeparately) continue;
    const c: Consolidated = { host: r.spec.host, subsets: [], from: [r], duplicateSubsets: [], exportTo };
    if (r.spec.trafficPolicy) c.trafficPolicy = r.spec.trafficPolicy;
    addSubsets(c, r.spec.subsets);
    list.push(c);
  }
  return byHost;
}

/** MostSpecificHostMatch: the rules of the exact host, else of the longest wildcard host covering it. */
function mostSpecific(index: Map<string, Consolidated[]> | undefined, hostname: string): Consolidated[] {
  if (!index) return [];
  const exact = index.get(hostname);
  if (exact) return exact;
  let best: string | undefined;
  for (const h of index.keys()) {
    if (!h.startsWith('*') || !subsetOf(hostname, h)) continue;
    if (best === undefined || h.length > best.length) best = h;
  }
  return best === undefined ? [] : (index.get(best) ?? []);
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
export function indexDestinationRules(
  all: readonly Config<DestinationRuleSpec>[],
  proxyNamespace: string,
  proxyLabels: Labels,
  rootNamespace: string,
): DestinationRuleIndex {
  const rules = all
    .filter((r) => !r.spec.workloadSelector || isSubset(r.spec.workloadSelector.matchLabels, proxyLabels))
    .map((r) => ({ ...r, spec: { ...r.spec, host: resolveShortName(r.spec.host, r.namespace) } }))
    .sort(compareByCreation);
  // setDestinationRules' indexes, each consolidated on its own.
  const byNamespace = (pick: (r: Config<DestinationRuleSpec>) => boolean): Map<string, Map<string, Consolidated[]>> => {
    const out = new Map<string, Config<DestinationRuleSpec>[]>();
    for (const r of rules) if (pick(r)) out.set(r.namespace, [...(out.get(r.namespace) ?? []), r]);
    return new Map([...out].map(([ns, l]) => [ns, consolidate(l)]));
  };
  const namespaceLocalRules = byNamespace(namespaceLocal);
  const exportedRules = byNamespace((r) => !privateOnly(r));
  const rootLocalRules = consolidate(rules.filter((r) => r.namespace === rootNamespace && privateOnly(r)));
  // getExportedDestinationRuleFromNamespace: the most specific host first, then exportTo.
  const exportedFrom = (namespace: string, hostname: string): Consolidated[] =>
    mostSpecific(exportedRules.get(namespace), hostname).filter((c) => c.exportTo.size === 0 || c.exportTo.has('*') || c.exportTo.has(proxyNamespace));
  const cache = new Map<string, EffectiveDestinationRule | undefined>();
  return {
    lookup(hostname, serviceNamespace) {
      const svcNs = serviceNamespace ?? /^[^.]+\.([^.]+)\.svc\./.exec(hostname)?.[1];
      const key = `${hostname}|${svcNs ?? ''}`;
      if (cache.has(key)) return cache.get(key);
      let found = mostSpecific(proxyNamespace === rootNamespace ? rootLocalRules : namespaceLocalRules.get(proxyNamespace), hostname);
      if (found.length === 0 && svcNs) found = exportedFrom(svcNs, hostname);
      if (found.length === 0) found = exportedFrom(rootNamespace, hostname);
      // SidecarScope.DestinationRule: of several consolidated rules, the last one (without a workload selector).
      const eff = found[found.length - 1];
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
