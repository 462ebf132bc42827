// The RBAC filters istiod puts on a gateway for its AuthorizationPolicies (pilot/pkg/security/authz/builder,
// networking/plugin/authz): the same list on every HTTP connection manager (HTTP and HTTPS servers) and, as
// network filters before tcp_proxy, on every TCP, TLS-terminated and TLS-passthrough filter chain.
//
// Order: CUSTOM first (one filter per provider, providers sorted by name), then AUDIT (action LOG), DENY and
// ALLOW, one filter each when such policies apply. A dry-run (`istio.io/dry-run: "true"`) ALLOW or DENY policy
// goes to the filter's shadow_rules, evaluated and counted (istio_dry_run_allow_/istio_dry_run_deny_) but not
// enforced. Rules are named `ns[<namespace>]-policy[<name>]-rule[<index>]`.
//
// CUSTOM delegates to an ext_authz provider of the mesh config (ext-authz.ts). Per provider, sorted by name: an RBAC
// filter that only evaluates (the CUSTOM rules as shadow rules, stat prefix `istio_ext_authz_`, each named
// `istio-ext-authz-<provider>-ns[..]-policy[..]-rule[..]`) and the ext_authz filter behind it, enabled by the RBAC
// filter's shadow effective policy id starting with `istio-ext-authz-<provider>`: the authorization service is asked
// only about requests a CUSTOM rule matches. On a TCP chain a gRPC provider gets the network pair; an HTTP provider
// none. A provider that is missing or invalid fails closed: a DENY filter whose rules are the CUSTOM rules, renamed
// `...-deny-due-to-bad-CUSTOM-action`. Two or more providers on one gateway (istiod needs
// PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS, off by default) fail closed for every provider.
import { typedAny, type envoy } from '../../xds/envoy.ts';
import type { AuthorizationPolicies, AuthorizationPolicyConfig } from '../model/authorization-policies.ts';
import { isDryRun } from '../model/authorization-policies.ts';
import type { ValidationError } from '../model/validation.ts';
import type { AuthorizationAction } from '../model/security-types.ts';
import { NETWORK_RBAC_TYPE } from '../../xds/type-urls.ts';
import { MATCH_NEVER, type Policy, rulePolicy } from './rbac-policy.ts';
import { TRUST_DOMAIN } from '../model/mesh.ts';
import type { PushContext } from '../model/push-context.ts';
import {
  type BuiltExtAuthz,
  EXT_AUTHZ_SHADOW_STAT_PREFIX,
  HTTP_EXT_AUTHZ_TYPE,
  NETWORK_EXT_AUTHZ_TYPE,
  extAuthzFor,
  filterEnabledMetadata,
  resolveExtAuthzProviders,
} from './ext-authz.ts';

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

/** What the mesh config contributes: the trust domain bundle and the ext_authz providers (none: every CUSTOM fails closed). */
export interface AuthzContext {
  trustDomains: readonly string[];
  extAuthz: ReadonlyMap<string, BuiltExtAuthz>;
}

const DEFAULT_CONTEXT: AuthzContext = { trustDomains: [TRUST_DOMAIN], extAuthz: new Map() };

/** The context of a push: trustdomain.NewBundle(trustDomain, trustDomainAliases) and processExtensionProvider. */
export function authzContext(push: PushContext): AuthzContext {
  if (push.authorizationPolicies.CUSTOM.length === 0 && push.mesh.trustDomainAliases.length === 0 && push.mesh.trustDomain === TRUST_DOMAIN)
    return DEFAULT_CONTEXT;
  return {
    trustDomains: [push.mesh.trustDomain, ...push.mesh.trustDomainAliases],
    extAuthz: push.authorizationPolicies.CUSTOM.length ? resolveExtAuthzProviders(push) : new Map(),
  };
}

/** Builder.build: every rule of `policies` as named RBAC policies, for an HTTP or a TCP chain. */
function buildRules(
  policies: readonly AuthorizationPolicyConfig[],
  action: AuthorizationAction,
  forTCP: boolean,
  trustDomains: readonly string[],
  prefix = '',
): Built {
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
      const policy = rulePolicy(p.namespace, rule, forTCP, generateFor, trustDomains);
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

type HttpRBAC = envoy.extensions.filters.http.rbac.v3.RBAC;

/** The AUDIT, DENY and ALLOW filter configurations, in that order. */
function localConfigs(policies: AuthorizationPolicies, forTCP: boolean, ctx: AuthzContext): HttpRBAC[] {
  const out: HttpRBAC[] = [];
  for (const action of ['AUDIT', 'DENY', 'ALLOW'] as const) {
    if (policies[action].length === 0) continue;
    const built = buildRules(policies[action], action, forTCP, ctx.trustDomains);
    out.push({
      ...(built.rules ? { rules: built.rules } : {}),
      ...(built.shadowRules ? { shadow_rules: built.shadowRules } : {}),
      shadow_rules_stat_prefix: shadowStatPrefix(built.shadowRules),
    });
  }
  return out;
}

/** One step of the CUSTOM filters: an RBAC config, or an ext_authz one (HTTP or network). */
type CustomFilter = { rbac: HttpRBAC } | { extAuthz: BuiltExtAuthz; provider: string };

/** The CUSTOM providers of the policies, sorted. */
const customProviders = (policies: AuthorizationPolicies): string[] => [...new Set(policies.CUSTOM.map((p) => p.spec.provider?.name ?? ''))].sort();

/** Builder.buildHTTP / buildTCP for the CUSTOM action. */
function customFilters(policies: AuthorizationPolicies, forTCP: boolean, ctx: AuthzContext): CustomFilter[] {
  const providers = customProviders(policies);
  const out: CustomFilter[] = [];
  for (const provider of providers) {
    const own = policies.CUSTOM.filter((p) => (p.spec.provider?.name ?? '') === provider);
    const built = buildRules(own, 'CUSTOM', forTCP, ctx.trustDomains, provider ? `istio-ext-authz-${provider}-` : 'istio-ext-authz-');
    const rules = built.rules ?? { action: 'DENY', policies: {} };
    const ext = providers.length > 1 ? undefined : extAuthzFor(ctx.extAuthz, provider);
    if (!ext || ext.error) {
      const denied: Record<string, Policy> = {};
      for (const [name, policy] of Object.entries(rules.policies ?? {})) denied[`${name}-deny-due-to-bad-CUSTOM-action`] = policy;
      out.push({ rbac: { rules: { action: 'DENY', policies: denied } } });
      continue;
    }
    // An HTTP provider on a TCP chain: nothing (istiod ignores the CUSTOM action there).
    if (forTCP && !ext.tcp) continue;
    out.push({ rbac: { shadow_rules: rules, shadow_rules_stat_prefix: EXT_AUTHZ_SHADOW_STAT_PREFIX } }, { extAuthz: ext, provider });
  }
  return out;
}

/** Builder.buildHTTP for CUSTOM: per provider the RBAC filter and the ext_authz one, or the fail-closed RBAC filter. */
function customHttpFilters(policies: AuthorizationPolicies, ctx: AuthzContext): HttpFilter[] {
  return customFilters(policies, false, ctx).map((f): HttpFilter => {
    if ('rbac' in f) return { name: 'envoy.filters.http.rbac', typed_config: typedAny(HTTP_RBAC_TYPE, f.rbac) };
    const http = { ...f.extAuthz.http, filter_enabled_metadata: filterEnabledMetadata('envoy.filters.http.rbac', f.provider) };
    return { name: 'envoy.filters.http.ext_authz', typed_config: typedAny(HTTP_EXT_AUTHZ_TYPE, http) };
  });
}

/**
 * The HTTP filters for a gateway HCM, placed before the filters that act on the request (fault, cors, router):
 * `custom`, the CUSTOM filters (istiod's authzCustomBuilder, which go before the JWT filter), and `rest`, the
 * AUDIT, DENY and ALLOW ones (after it). Without a context, every CUSTOM provider is missing.
 */
export function rbacHttpFilterGroups(policies: AuthorizationPolicies, ctx: AuthzContext = DEFAULT_CONTEXT): { custom: HttpFilter[]; rest: HttpFilter[] } {
  return {
    custom: customHttpFilters(policies, ctx),
    rest: localConfigs(policies, false, ctx).map((c) => ({ name: 'envoy.filters.http.rbac', typed_config: typedAny(HTTP_RBAC_TYPE, c) })),
  };
}

/** All the authorization HTTP filters in chain order (CUSTOM, AUDIT, DENY, ALLOW). */
export function rbacHttpFilters(policies: AuthorizationPolicies, ctx: AuthzContext = DEFAULT_CONTEXT): HttpFilter[] {
  const g = rbacHttpFilterGroups(policies, ctx);
  return [...g.custom, ...g.rest];
}

/** A network RBAC filter: the HTTP config with TCP's stat prefix. */
function networkRbac(c: HttpRBAC): NetworkFilter {
  const { shadow_rules_stat_prefix: shadowPrefix, ...rest } = c;
  const config: envoy.extensions.filters.network.rbac.v3.RBAC = { ...rest, stat_prefix: 'tcp.' };
  if (shadowPrefix !== undefined) config.shadow_rules_stat_prefix = shadowPrefix;
  return { name: 'envoy.filters.network.rbac', typed_config: typedAny(NETWORK_RBAC_TYPE, config) };
}

/**
 * The network filters for a TCP or TLS filter chain, before tcp_proxy: the CUSTOM ones (a gRPC provider's RBAC and
 * ext_authz pair, or the fail-closed RBAC filter), then AUDIT, DENY and ALLOW. HTTP-only fields (hosts, methods,
 * paths, request principals, JWT claims, request headers) cannot be checked on raw TCP: an ALLOW rule using one is
 * left out (allowing less), a DENY or AUDIT rule drops just that field (denying more). Stat prefix `tcp.`.
 */
export function rbacNetworkFilters(policies: AuthorizationPolicies, ctx: AuthzContext = DEFAULT_CONTEXT): NetworkFilter[] {
  const custom = customFilters(policies, true, ctx).map((f): NetworkFilter => {
    if ('rbac' in f) return networkRbac(f.rbac);
    const tcp = { ...f.extAuthz.tcp, filter_enabled_metadata: filterEnabledMetadata('envoy.filters.network.rbac', f.provider) };
    return { name: 'envoy.filters.network.ext_authz', typed_config: typedAny(NETWORK_EXT_AUTHZ_TYPE, tcp) };
  });
  return [...custom, ...localConfigs(policies, true, ctx).map(networkRbac)];
}

/**
 * What the operator should know about the CUSTOM policies this gateway enforces: those whose provider cannot be
 * used deny what their rules match instead, and why.
 */
export function authorizationNotes(policies: AuthorizationPolicies, ctx: AuthzContext = DEFAULT_CONTEXT): ValidationError[] {
  const providers = customProviders(policies);
  const notes: ValidationError[] = [];
  for (const p of policies.CUSTOM) {
    const provider = p.spec.provider?.name ?? '';
    const why =
      providers.length > 1
        ? `this gateway has CUSTOM policies naming ${providers.length} providers (${providers.join(', ')}); like istiod without PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS (its default), every CUSTOM policy then fails closed: use one provider per gateway`
        : extAuthzFor(ctx.extAuthz, provider).error;
    if (!why) continue;
    notes.push({
      kind: p.kind,
      namespace: p.namespace,
      name: p.name,
      origin: p.origin,
      field: 'spec.provider.name',
      message: `CUSTOM action: the ext_authz provider ${JSON.stringify(provider)} cannot be used (${why}), so requests matching this policy's rules are denied, as istiod does; define it under extensionProviders in the mesh config (docs/mesh-config.md)`,
    });
  }
  return notes;
}
