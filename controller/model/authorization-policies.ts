// Which AuthorizationPolicies apply to a gateway proxy, grouped by action (pilot/pkg/model/authorization.go
// ListAuthorizationPolicies, policyattachment.go ShouldAttachPolicy): those of the root namespace, then those
// of the gateway's own namespace, each in creation order; a policy in any other namespace never applies.
import type { Config } from './config.ts';
import { isSubset, type Labels } from './labels.ts';
import { parseGoBool } from './authorization-policy-validation.ts';
import {
  type AuthorizationAction,
  type AuthorizationPolicySpec,
  type PolicyAttachment,
  type PolicyTargetReference,
  DRY_RUN_ANNOTATION,
  actionOf,
} from './security-types.ts';

export type AuthorizationPolicyConfig = Config<AuthorizationPolicySpec>;

/** The policies of one proxy by action, each list in istiod's order. */
export type AuthorizationPolicies = Readonly<Record<AuthorizationAction, readonly AuthorizationPolicyConfig[]>>;

/** The label a Gateway API (Kubernetes Gateway) deployment carries: istiod attaches policies to it by targetRef. */
const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

/** GetTargetRefs: targetRefs, else the single targetRef. */
function targetRefs(spec: PolicyAttachment): readonly PolicyTargetReference[] {
  if (spec.targetRefs?.length) return spec.targetRefs;
  return spec.targetRef ? [spec.targetRef] : [];
}

/**
 * ShouldAttachPolicy for a gateway proxy (not a waypoint), for any security policy (AuthorizationPolicy,
 * RequestAuthentication). An Istio gateway is selected by `selector` alone, and a policy with a targetRef never
 * applies to it. A Gateway API gateway (its pods labelled with the Gateway's name) takes a policy of its own
 * namespace whose targetRef names its Gateway, or, with none, one whose selector matches
 * (ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY, on by default).
 */
export function attaches(p: Config<PolicyAttachment>, namespace: string, labels: Labels): boolean {
  const refs = targetRefs(p.spec);
  const selected = (): boolean => isSubset(p.spec.selector?.matchLabels, labels);
  const gatewayName = labels[GATEWAY_NAME_LABEL];
  if (gatewayName === undefined) return refs.length === 0 && selected();
  if (refs.length === 0) return selected();
  return refs.some(
    (r) =>
      p.namespace === namespace &&
      (!r.namespace || r.namespace === namespace) &&
      (r.group ?? '') === 'gateway.networking.k8s.io' &&
      r.kind === 'Gateway' &&
      r.name === gatewayName,
  );
}

/**
 * The policies applying to a gateway in `namespace` with `labels`, from validated policies sorted by creation
 * (configCompareByCreationTime): root namespace first, then the gateway's own (once, when they are the same).
 * A numeric action outside the enum is ignored, as istiod does.
 */
export function selectAuthorizationPolicies(
  sorted: readonly AuthorizationPolicyConfig[],
  rootNamespace: string,
  namespace: string,
  labels: Labels,
): AuthorizationPolicies {
  const out: Record<AuthorizationAction, AuthorizationPolicyConfig[]> = { ALLOW: [], DENY: [], AUDIT: [], CUSTOM: [] };
  for (const ns of [...new Set([rootNamespace, namespace])]) {
    for (const p of sorted) {
      if (p.namespace !== ns || !attaches(p, namespace, labels)) continue;
      const action = actionOf(p.spec);
      if (action) out[action].push(p);
    }
  }
  return out;
}

/** isDryRun: the annotation parsed as a Go boolean; a value that does not parse is not dry-run. */
export function isDryRun(p: AuthorizationPolicyConfig): boolean {
  const v = p.annotations[DRY_RUN_ANNOTATION];
  return v !== undefined && parseGoBool(v) === true;
}

/**
 * What an AuthorizationPolicy that fails validation enforces instead, so that refusing it never opens the
 * gateway (istiod relies on its webhook to keep such policies out; a gateway must not fail open when one gets
 * in): an ALLOW policy allows nothing, a DENY or CUSTOM one denies everything, an AUDIT one is left out (it
 * never decides). A spec that could not even be decoded denies everything in its namespace (its selector
 * cannot be trusted), hence mesh-wide in the root namespace. Undefined: the policy is left out.
 */
export function failClosedSpec(spec: AuthorizationPolicySpec, decoded: boolean): AuthorizationPolicySpec | undefined {
  if (!decoded) return { action: 'DENY', rules: [{}] };
  const base: AuthorizationPolicySpec = {
    ...(spec.selector ? { selector: spec.selector } : {}),
    ...(spec.targetRef ? { targetRef: spec.targetRef } : {}),
    ...(spec.targetRefs ? { targetRefs: spec.targetRefs } : {}),
  };
  switch (actionOf(spec)) {
    case 'ALLOW':
      return { ...base, action: 'ALLOW', rules: [] };
    case 'AUDIT':
      return undefined;
    default:
      // DENY, CUSTOM (whose provider is never reachable here) and an action number outside the enum.
      return { ...base, action: 'DENY', rules: [{}] };
  }
}

/** The sentence a refused policy's report ends with: what the gateway enforces for it instead. */
export function failClosedNote(replacement: AuthorizationPolicySpec | undefined): string {
  if (replacement === undefined) return 'the policy is ignored (AUDIT never allows or denies)';
  return replacement.action === 'ALLOW'
    ? 'until it is fixed it is enforced as an ALLOW policy that allows nothing, so the gateway does not fail open'
    : 'until it is fixed it is enforced as a DENY of every request it could apply to, so the gateway does not fail open';
}
