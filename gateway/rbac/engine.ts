// Envoy's RBAC engine (source/extensions/filters/common/rbac/engine_impl.cc) and the HTTP RBAC filter's
// configuration (source/extensions/filters/http/rbac/rbac_filter.cc), as pure functions of a request: what
// Istio's AuthorizationPolicy becomes on a gateway (ALLOW, DENY, AUDIT as LOG, dry-run as shadow_rules).
//
//   - A policy matches when one of its permissions matches and one of its principals matches.
//   - Policies are tried in the order of their names (Envoy keeps them in a std::map: byte order), and the
//     first that matches is the effective policy, whatever the action.
//   - ALLOW allows iff a policy matches; DENY denies iff one matches; LOG always allows (the match only sets
//     the access_log_hint).
//   - An engine is built only for a field that is present: `rules: {}` (ALLOW, no policies) denies every
//     request, an absent `rules` allows every request.
//
// Everything is compiled to closures when the config is parsed; evaluating a request allocates only its
// result. Fields the proxy cannot enforce (CEL conditions, the matcher-API form, extension matchers, audit
// loggers, filter_state principals, per-rule stats) are ConfigErrors: the listener update is NACKed instead of
// a policy silently failing open.
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { any, compileList, refuse } from './matchers.ts';
import { compilePermission } from './permissions.ts';
import { compilePrincipal } from './principals.ts';
import type { RbacMatcher, RbacRequest } from './request.ts';

export type { RbacRequest } from './request.ts';
export { metadataValue } from '../router/metadata-matcher.ts';

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

/** The policy a request matched (Envoy: the effective policy id), if any. */
export interface RbacMatch {
  matched: boolean;
  policy: string | undefined;
}

const checkRbac = fieldTable('envoy.config.rbac.v3.RBAC', { action: true, policies: true });
const checkPolicy = fieldTable('envoy.config.rbac.v3.Policy', { permissions: true, principals: true });
const checkHttpRbac = fieldTable('envoy.extensions.filters.http.rbac.v3.RBAC', {
  rules: true,
  shadow_rules: true,
  rules_stat_prefix: true,
  shadow_rules_stat_prefix: true,
  track_per_rule_stats: true,
});

// proto3 JSON writes an enum by name, and may write it by number.
const ACTIONS = new Map<unknown, RbacAction>([
  ['ALLOW', 'ALLOW'],
  ['DENY', 'DENY'],
  ['LOG', 'LOG'],
  [0, 'ALLOW'],
  [1, 'DENY'],
  [2, 'LOG'],
]);

function utf8Order(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** config.rbac.v3.RBAC, compiled: its action and its policies in evaluation order. */
export class RbacEngine {
  readonly action: RbacAction;
  private readonly names: readonly string[];
  private readonly policies: readonly RbacMatcher[];

  constructor(rbac: envoy.config.rbac.v3.RBAC, where: string) {
    refuse(rbac, 'audit_logging_options', where, 'RBAC audit loggers are not supported by this proxy');
    checkRbac(rbac, where);
    const action = ACTIONS.get(rbac.action ?? 'ALLOW');
    if (action === undefined) throw new ConfigError(`${where}.action: unknown action '${String(rbac.action)}'`);
    this.action = action;
    const entries = Object.entries(rbac.policies ?? {}).sort(([a], [b]) => utf8Order(a, b));
    this.names = entries.map(([name]) => name);
    this.policies = entries.map(([name, policy]) => compilePolicy(policy, `${where}.policies[${JSON.stringify(name)}]`));
  }

  /** The index of the first policy that matches, -1 when none does (Envoy checkPolicyMatch). */
  private first(req: RbacRequest): number {
    const ps = this.policies;
    for (let i = 0; i < ps.length; i++) if ((ps[i] as RbacMatcher)(req)) return i;
    return -1;
  }

  /** Which policy the request matches, whatever the action. */
  match(req: RbacRequest): RbacMatch {
    const i = this.first(req);
    return i < 0 ? { matched: false, policy: undefined } : { matched: true, policy: this.names[i] };
  }

  /**
   * Envoy handleAction: whether the request is allowed, and the effective policy (the first that matched, for
   * every action). With LOG the request is always allowed; Envoy then sets envoy.common.access_log_hint to
   * whether a policy matched (enforced rules only).
   */
  handle(req: RbacRequest): { allowed: boolean; policy: string | undefined } {
    const i = this.first(req);
    const matched = i >= 0;
    const policy = matched ? this.names[i] : undefined;
    switch (this.action) {
      case 'ALLOW':
        return { allowed: matched, policy };
      case 'DENY':
        return { allowed: !matched, policy };
      default:
        return { allowed: true, policy };
    }
  }
}

/** config.rbac.v3.Policy: any permission and any principal (Envoy PolicyMatcher; both lists are required). */
function compilePolicy(p: envoy.config.rbac.v3.Policy, where: string): RbacMatcher {
  refuse(p, 'condition', where, 'CEL conditions are not supported by this proxy');
  refuse(p, 'checked_condition', where, 'CEL conditions are not supported by this proxy');
  checkPolicy(p, where);
  const permissions = any(compileList(p.permissions, `${where}.permissions`, compilePermission));
  const principals = any(compileList(p.principals, `${where}.principals`, compilePrincipal));
  return (req) => permissions(req) && principals(req);
}

/** The HTTP filter's typed_config: enforced rules and/or shadow rules, with Envoy's stat prefixes. */
export interface RbacFilter {
  rules: RbacEngine | undefined;
  shadow: RbacEngine | undefined;
  rulesStatPrefix: string;
  shadowStatPrefix: string;
}

/** extensions.filters.http.rbac.v3.RBAC (the typed_config of envoy.filters.http.rbac). */
export function parseHttpRbac(cfg: envoy.extensions.filters.http.rbac.v3.RBAC, where: string): RbacFilter {
  refuse(cfg, 'matcher', where, 'the matcher-API form of RBAC is not supported by this proxy (use rules)');
  refuse(cfg, 'shadow_matcher', where, 'the matcher-API form of RBAC is not supported by this proxy (use shadow_rules)');
  if (cfg.track_per_rule_stats === true) throw new ConfigError(`${where}.track_per_rule_stats: per-policy RBAC stats are not supported by this proxy`);
  checkHttpRbac(cfg, where);
  return {
    rules: cfg.rules === undefined ? undefined : new RbacEngine(cfg.rules, `${where}.rules`),
    shadow: cfg.shadow_rules === undefined ? undefined : new RbacEngine(cfg.shadow_rules, `${where}.shadow_rules`),
    rulesStatPrefix: cfg.rules_stat_prefix ?? '',
    shadowStatPrefix: cfg.shadow_rules_stat_prefix ?? '',
  };
}

/**
 * The response code details of an RBAC 403 (Envoy RBAC::responseDetail): `rbac_access_denied_matched_policy[<id>]`,
 * `none` without a matched policy, whitespace in the id replaced by '_'.
 */
export function responseDetail(policy: string | undefined): string {
  const id = policy ? policy.replace(/[ \t\n\v\f\r]/g, '_') : 'none';
  return `rbac_access_denied_matched_policy[${id}]`;
}

/** What Envoy's HTTP RBAC filter does with a request's headers (RoleBasedAccessControlFilter::decodeHeaders). */
export interface RbacDecision {
  /** false: a local 403 "RBAC: access denied" with `responseCodeDetails`, and the filter chain stops. */
  allowed: boolean;
  responseCodeDetails: string | undefined;
  /** Dynamic metadata set under `envoy.filters.http.rbac`; undefined when no engine ran. */
  metadata: Record<string, string> | undefined;
  /** Dynamic metadata `envoy.common` `access_log_hint`, set when the enforced rules' action is LOG. */
  accessLogHint: boolean | undefined;
  /** Counters to increment, relative to `http.<stat_prefix>.` (e.g. `rbac.allowed`, `rbac.istio_dry_run_allow_shadow_denied`). */
  counters: string[];
}

/**
 * The whole HTTP filter decision: the shadow engine first (stats and metadata only), then the enforced one.
 * Without any engine the request is allowed.
 */
export function decideHttpRbac(f: RbacFilter, req: RbacRequest): RbacDecision {
  let metadata: Record<string, string> | undefined;
  const counters: string[] = [];
  if (f.shadow !== undefined) {
    const r = f.shadow.handle(req);
    const p = f.shadowStatPrefix;
    metadata = {};
    if (r.policy) metadata[`${p}shadow_effective_policy_id`] = r.policy;
    metadata[`${p}shadow_engine_result`] = r.allowed ? 'allowed' : 'denied';
    counters.push(`rbac.${p}${r.allowed ? 'shadow_allowed' : 'shadow_denied'}`);
  }
  if (f.rules === undefined) return { allowed: true, responseCodeDetails: undefined, metadata, accessLogHint: undefined, counters };
  const r = f.rules.handle(req);
  const p = f.rulesStatPrefix;
  metadata ??= {};
  if (r.policy) metadata[`${p}enforced_effective_policy_id`] = r.policy;
  metadata[`${p}enforced_engine_result`] = r.allowed ? 'allowed' : 'denied';
  counters.push(`rbac.${p}${r.allowed ? 'allowed' : 'denied'}`);
  return {
    allowed: r.allowed,
    responseCodeDetails: r.allowed ? undefined : responseDetail(r.policy),
    metadata,
    accessLogHint: f.rules.action === 'LOG' ? r.policy !== undefined : undefined,
    counters,
  };
}
