// The network RBAC filter (envoy.filters.network.rbac): what istiod puts before tcp_proxy on a gateway's TCP
// and TLS chains for AuthorizationPolicy. The same engine as the HTTP filter, on what a connection has: its
// addresses, SNI and client certificate (header and path matchers see nothing).
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { RbacEngine, type RbacFilter } from './engine.ts';
import { refuse } from './matchers.ts';

export interface NetworkRbacFilter extends RbacFilter {
  /** stat_prefix, already joined with `rbac.`'s dot: the counters are `<statPrefix>rbac.allowed`, ... */
  statPrefix: string;
}

const checkNetworkRbac = fieldTable('envoy.extensions.filters.network.rbac.v3.RBAC', {
  rules: true,
  shadow_rules: true,
  stat_prefix: true,
  shadow_rules_stat_prefix: true,
  enforcement_type: true,
});

export function parseNetworkRbac(cfg: envoy.extensions.filters.network.rbac.v3.RBAC, where: string): NetworkRbacFilter {
  refuse(cfg, 'matcher', where, 'the matcher-API form of RBAC is not supported by this proxy (use rules)');
  refuse(cfg, 'shadow_matcher', where, 'the matcher-API form of RBAC is not supported by this proxy (use shadow_rules)');
  checkNetworkRbac(cfg, where);
  const enforcement = cfg.enforcement_type ?? 'ONE_TIME_ON_FIRST_BYTE';
  if (enforcement !== 'ONE_TIME_ON_FIRST_BYTE')
    throw new ConfigError(`${where}.enforcement_type: ${String(enforcement)} is not supported by this proxy (ONE_TIME_ON_FIRST_BYTE is)`);
  const prefix = cfg.stat_prefix ?? '';
  if (prefix === '') throw new ConfigError(`${where}.stat_prefix: required`);
  return {
    rules: cfg.rules === undefined ? undefined : new RbacEngine(cfg.rules, `${where}.rules`),
    shadow: cfg.shadow_rules === undefined ? undefined : new RbacEngine(cfg.shadow_rules, `${where}.shadow_rules`),
    rulesStatPrefix: '',
    shadowStatPrefix: cfg.shadow_rules_stat_prefix ?? '',
    // Envoy's statPrefixJoin: one dot between the prefix and `rbac.` (Istio's is `tcp.`).
    statPrefix: prefix.endsWith('.') ? prefix : `${prefix}.`,
  };
}
