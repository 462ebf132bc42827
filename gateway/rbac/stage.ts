// One RBAC filter as a stage of a filter chain (HTTP or network): its shadow rules counted, its enforced rules
// deciding, with the four counters Envoy keeps for it (`<prefix>rbac.<rules_stat_prefix>allowed|denied`,
// `<prefix>rbac.<shadow_rules_stat_prefix>shadow_allowed|shadow_denied`).
import type { StatsStore } from '../stats/store.ts';
import type { RbacFilter, RbacRequest } from './engine.ts';

export interface RbacStage {
  filter: RbacFilter;
  allowed: number;
  denied: number;
  shadowAllowed: number;
  shadowDenied: number;
}

/** `counter` registers a stat relative to the filter's scope (`rbac.` comes first, as Envoy joins it). */
export function rbacStage(filter: RbacFilter, counter: (name: string) => number): RbacStage {
  return {
    filter,
    allowed: counter(`rbac.${filter.rulesStatPrefix}allowed`),
    denied: counter(`rbac.${filter.rulesStatPrefix}denied`),
    shadowAllowed: counter(`rbac.${filter.shadowStatPrefix}shadow_allowed`),
    shadowDenied: counter(`rbac.${filter.shadowStatPrefix}shadow_denied`),
  };
}

/**
 * Envoy's order within one filter: the shadow rules (counted only), then the enforced rules. A filter without
 * enforced rules allows. `policy` is the enforced rules' matched policy (the 403's response details).
 */
export function runRbacStage(stage: RbacStage, req: RbacRequest, store: StatsStore): { allowed: boolean; policy: string | undefined } {
  const { rules, shadow } = stage.filter;
  if (shadow) store.inc(shadow.handle(req).allowed ? stage.shadowAllowed : stage.shadowDenied);
  if (!rules) return { allowed: true, policy: undefined };
  const r = rules.handle(req);
  store.inc(r.allowed ? stage.allowed : stage.denied);
  return r;
}
