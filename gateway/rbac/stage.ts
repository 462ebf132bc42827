// The four counters Envoy keeps for one RBAC filter, HTTP or network (`<prefix>rbac.<rules_stat_prefix>allowed|denied`,
// `<prefix>rbac.<shadow_rules_stat_prefix>shadow_allowed|shadow_denied`), registered when the filter is built (so
// they show as 0 before any request) and looked up by the names decideHttpRbac reports.
import type { RbacFilter } from './engine.ts';

/** `counter` registers a stat relative to the filter's scope (`rbac.` comes first, as Envoy joins it). */
export function rbacCounters(filter: RbacFilter, counter: (name: string) => number): Map<string, number> {
  const names = [
    `rbac.${filter.rulesStatPrefix}allowed`,
    `rbac.${filter.rulesStatPrefix}denied`,
    `rbac.${filter.shadowStatPrefix}shadow_allowed`,
    `rbac.${filter.shadowStatPrefix}shadow_denied`,
  ];
  return new Map(names.map((n) => [n, counter(n)]));
}
