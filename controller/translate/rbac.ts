// The RBAC filters istiod puts on a gateway for its AuthorizationPolicies (pilot/pkg/security/authz/builder,
// networking/plugin/authz): the same list on every HTTP connection manager (HTTP and HTTPS servers) and, as
// network filters before tcp_proxy, on every TCP, TLS-terminated and TLS-passthrough filter chain.
//
// Order: CUSTOM first (one filter per provider, providers sorted by name), then AUDIT (action LOG), DENY and
// ALLOW, one filter each when such policies apply. A dry-run (`istio.io/dry-run: "true"`) ALLOW or DENY policy
// goes to the filter's shadow_rules, evaluated and counted (istio_dry_run_allow_/istio_dry_run_deny_) but not
// enforced. Rules are named `ns[<namespace>]-policy[<name>]-rule[<index>]`.
//
// CUSTOM delegates to an ext_authz provider of the mesh config. meshgate has no mesh config and no ext_authz,
// so every provider is missing, and istiod's answer to a missing provider applies: fail closed, a DENY filter
// whose rules are the CUSTOM rules, named `istio-ext-authz-<provider>-ns[..]-policy[..]-rule[..]-deny-due-to-bad-CUSTOM-action`.
import { typedAny, type envoy } from '../../xds/envoy.ts';
import type { AuthorizationPolicies, AuthorizationPolicyConfig } from '../model/authorization-policies.ts';
import { isDryRun } from '../model/authorization-policies.ts';
import type { ValidationError } from '../model/validation.ts';
import type { AuthorizationAction } from '../model/security-types.ts';
import { NETWORK_RBAC_TYPE } from '../../xds/type-urls.ts';
import { MATCH_NEVER, type Policy, rulePolicy } from './rbac-policy.ts';

// The HTTP filter's type URL; it belongs beside NETWORK_RBAC_TYPE in xds/type-urls.ts, shared with the proxy.
export const HTTP_RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC' as const;

type RBAC = envoy.config.rbac.v3.RBAC;
type HttpFilter = envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
type NetworkFilter = envoy.config.listener.v3.Filter;

/** Envoy's RBAC action for a policy action (AUDIT logs; CUSTOM is built as DENY, see above). */
const ENVOY_ACTION: Record<AuthorizationAction, RBAC['action']> = { ALLOW: 'ALLOW', DENY: 'DENY', AUDIT: 'LOG', CUSTOM: 'DENY' };

/** The rule sets of one action: enforced and dry-run, each present only when some policy went to it. */
interface Built {
  rules?: RBAC;
  shadowRules?: RBAC;
}

/** Builder.build: every rule of `policies` as named RBAC policies, for an HTTP or a TCP chain. */
function buildRules(policies: readonly AuthorizationPolicyConfig[], action: AuthorizationAction, forTCP: boolean, prefix = ''): Built {
  const envoyAction = ENVOY_ACTION[action];
  const enforced: Record<string, Policy> = {};
  const shadow: Record<string, Policy> = {};
  let hasEnforced = false;
  let hasShadow = false;
  // Rules are generated for the action the filter enforces: CUSTOM's missing-provider DENY widens like a DENY.
  const generateFor: AuthorizationAction = action === 'CUSTOM' ? 'DENY' : action;
  for (const p of policies) {
    // Validation refuses dry-run on AUDIT and CUSTOM, so only ALLOW and DENY policies reach the shadow rules.
    const dry = action !== 'CUSTOM' && isDryRun(p);
    const into = dry ? shadow : enforced;
    if (dry) hasShadow = true;
    else hasEnforced = true;
    const name = (i: number): string => `${prefix}ns[${p.namespace}]-policy[${p.name}]-rule[${i}]`;
    const rules = p.spec.rules ?? [];
    rules.forEach((rule, i) => {
      const policy = rulePolicy(p.namespace, rule, forTCP, generateFor);
      if (!('error' in policy)) into[name(i)] = policy;
    });
    // A policy without rules matches nothing: an ALLOW one thus allows nothing (deny all).
    if (rules.length === 0) into[name(0)] = MATCH_NEVER;
  }
  return {
    ...(hasEnforced ? { rules: { action: envoyAction, policies: enforced } } : {}),
    ...(hasShadow ? { shadowRules: { action: envoyAction, policies: shadow } } : {}),
  };
}

/**
 * shadowRuleStatPrefix as istiod calls it: on the shadow rules, or on none, whose action then reads as
 * ALLOW (the zero value), so a filter without dry-run policies still carries `istio_dry_run_allow_`.
 */
function shadowStatPrefix(shadow: RBAC | undefined): string {
  const action = shadow?.action ?? 'ALLOW';
  return action === 'ALLOW' ? 'istio_dry_run_allow_' : action === 'DENY' ? 'istio_dry_run_deny_' : '';
}

/** The filter configurations, CUSTOM, AUDIT, DENY, ALLOW, in order (for HTTP, or with TCP's stat prefix). */
function rbacConfigs(policies: AuthorizationPolicies, forTCP: boolean): envoy.extensions.filters.http.rbac.v3.RBAC[] {
  const out: envoy.extensions.filters.http.rbac.v3.RBAC[] = [];
  // CUSTOM: per provider, sorted by name; the missing provider's rules renamed and enforced as DENY.
  const providers = [...new Set(policies.CUSTOM.map((p) => p.spec.provider?.name ?? ''))].sort();
  for (const provider of providers) {
    const own = policies.CUSTOM.filter((p) => (p.spec.provider?.name ?? '') === provider);
    const built = buildRules(own, 'CUSTOM', forTCP, provider ? `istio-ext-authz-${provider}-` : 'istio-ext-authz-');
    const policiesOut: Record<string, Policy> = {};
    for (const [name, policy] of Object.entries(built.rules?.policies ?? {})) policiesOut[`${name}-deny-due-to-bad-CUSTOM-action`] = policy;
    out.push({ rules: { action: 'DENY', policies: policiesOut } });
  }
  for (const action of ['AUDIT', 'DENY', 'ALLOW'] as const) {
    if (policies[action].length === 0) continue;
    const built = buildRules(policies[action], action, forTCP);
    out.push({
      ...(built.rules ? { rules: built.rules } : {}),
      ...(built.shadowRules ? { shadow_rules: built.shadowRules } : {}),
      shadow_rules_stat_prefix: shadowStatPrefix(built.shadowRules),
    });
  }
  return out;
}

/**
 * The HTTP filters for a gateway HCM, placed before the filters that act on the request (fault, cors, router):
 * `custom`, the CUSTOM filters (istiod's authzCustomBuilder, which go before the JWT filter), and `rest`, the
 * AUDIT, DENY and ALLOW ones (after it).
 */
export function rbacHttpFilterGroups(policies: AuthorizationPolicies): { custom: HttpFilter[]; rest: HttpFilter[] } {
  const all = rbacHttpFilters(policies);
  const customCount = new Set(policies.CUSTOM.map((p) => p.spec.provider?.name ?? '')).size;
  return { custom: all.slice(0, customCount), rest: all.slice(customCount) };
}

/** All the RBAC HTTP filters in chain order (CUSTOM, AUDIT, DENY, ALLOW). */
export function rbacHttpFilters(policies: AuthorizationPolicies): HttpFilter[] {
  return rbacConfigs(policies, false).map((c) => ({ name: 'envoy.filters.http.rbac', typed_config: typedAny(HTTP_RBAC_TYPE, c) }));
}

/**
 * The network filters for a TCP or TLS filter chain, before tcp_proxy. HTTP-only fields (hosts, methods, paths,
 * request principals, JWT claims, request headers) cannot be checked on raw TCP: an ALLOW rule using one is
 * left out (allowing less), a DENY or AUDIT rule drops just that field (denying more). Stat prefix `tcp.`.
 */
export function rbacNetworkFilters(policies: AuthorizationPolicies): NetworkFilter[] {
  return rbacConfigs(policies, true).map((c) => {
    // CUSTOM's filter has no shadow rules, hence no shadow stat prefix.
    const { shadow_rules_stat_prefix: shadowPrefix, ...rest } = c;
    const config: envoy.extensions.filters.network.rbac.v3.RBAC = { ...rest, stat_prefix: 'tcp.' };
    if (shadowPrefix !== undefined) config.shadow_rules_stat_prefix = shadowPrefix;
    return { name: 'envoy.filters.network.rbac', typed_config: typedAny(NETWORK_RBAC_TYPE, config) };
  });
}

/**
 * What the operator should know about the policies this gateway enforces: a CUSTOM policy cannot reach its
 * ext_authz provider and denies what its rules match instead.
 */
export function authorizationNotes(policies: AuthorizationPolicies): ValidationError[] {
  return policies.CUSTOM.map((p) => ({
    kind: p.kind,
    namespace: p.namespace,
    name: p.name,
    origin: p.origin,
    field: 'spec.provider.name',
    message: `CUSTOM action: the ext_authz provider ${JSON.stringify(p.spec.provider?.name ?? '')} is not available (meshgate has no mesh config extensionProviders nor ext_authz), so requests matching this policy's rules are denied, as istiod does for a provider it cannot find`,
  }));
}
