// The RBAC filters of a gateway's AuthorizationPolicies: order, names, dry-run, CUSTOM failing closed, and the
// HTTP-only fields on TCP chains (the goldens authz-* show whole listeners; istiod's own output is compared by
// the istiod differential).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackAny } from '../../xds/envoy.ts';
import type { AuthorizationPolicies, AuthorizationPolicyConfig } from '../model/authorization-policies.ts';
import type { AuthorizationPolicySpec } from '../model/security-types.ts';
import { NETWORK_RBAC_TYPE } from '../../xds/type-urls.ts';
import { HTTP_RBAC_TYPE, rbacHttpFilters, rbacNetworkFilters } from './rbac.ts';

function policy(name: string, spec: AuthorizationPolicySpec, annotations: Record<string, string> = {}): AuthorizationPolicyConfig {
  return {
    kind: 'AuthorizationPolicy',
    apiVersion: 'security.istio.io/v1',
    name,
    namespace: 'istio-system',
    creationTimestamp: '',
    labels: {},
    annotations,
    origin: {},
    spec,
  };
}

const none: AuthorizationPolicies = { ALLOW: [], DENY: [], AUDIT: [], CUSTOM: [] };
const http = (p: AuthorizationPolicies) => rbacHttpFilters(p).map((f) => unpackAny(f.typed_config ?? { '@type': HTTP_RBAC_TYPE }, HTTP_RBAC_TYPE));
const tcp = (p: AuthorizationPolicies) => rbacNetworkFilters(p).map((f) => unpackAny(f.typed_config ?? { '@type': NETWORK_RBAC_TYPE }, NETWORK_RBAC_TYPE));

test('no policy, no filter', () => {
  assert.deepEqual(rbacHttpFilters(none), []);
  assert.deepEqual(rbacNetworkFilters(none), []);
});

test('CUSTOM (providers sorted), AUDIT, DENY, ALLOW, in that order', () => {
  const got = http({
    ALLOW: [policy('a', { rules: [{}] })],
    DENY: [policy('d', { action: 'DENY', rules: [{}] })],
    AUDIT: [policy('l', { action: 'AUDIT', rules: [{}] })],
    CUSTOM: [
      policy('c2', { action: 'CUSTOM', provider: { name: 'zz' }, rules: [{}] }),
      policy('c1', { action: 'CUSTOM', provider: { name: 'aa' }, rules: [{}] }),
    ],
  });
  assert.deepEqual(
    got.map((c) => [c.rules?.action, Object.keys(c.rules?.policies ?? {})]),
    [
      ['DENY', ['istio-ext-authz-aa-ns[istio-system]-policy[c1]-rule[0]-deny-due-to-bad-CUSTOM-action']],
      ['DENY', ['istio-ext-authz-zz-ns[istio-system]-policy[c2]-rule[0]-deny-due-to-bad-CUSTOM-action']],
      ['LOG', ['ns[istio-system]-policy[l]-rule[0]']],
      ['DENY', ['ns[istio-system]-policy[d]-rule[0]']],
      ['ALLOW', ['ns[istio-system]-policy[a]-rule[0]']],
    ],
  );
  // istiod leaves the CUSTOM filter without a shadow stat prefix, and gives the others istio_dry_run_allow_ even
  // without dry-run policies (the prefix of an absent rule set, whose action reads as ALLOW).
  assert.deepEqual(
    got.map((c) => c.shadow_rules_stat_prefix),
    [undefined, undefined, 'istio_dry_run_allow_', 'istio_dry_run_allow_', 'istio_dry_run_allow_'],
  );
});

test('dry-run policies are shadow rules of their action, with its stat prefix', () => {
  const [deny, allow] = http({
    ...none,
    DENY: [policy('d', { action: 'DENY', rules: [{}] }, { 'istio.io/dry-run': 'true' })],
    ALLOW: [policy('a', { rules: [{}] }, { 'istio.io/dry-run': '1' }), policy('b', {}, { 'istio.io/dry-run': 'false' })],
  });
  assert.equal(deny?.rules, undefined);
  assert.deepEqual(Object.keys(deny?.shadow_rules?.policies ?? {}), ['ns[istio-system]-policy[d]-rule[0]']);
  assert.equal(deny?.shadow_rules_stat_prefix, 'istio_dry_run_deny_');
  assert.deepEqual(Object.keys(allow?.rules?.policies ?? {}), ['ns[istio-system]-policy[b]-rule[0]']);
  assert.deepEqual(Object.keys(allow?.shadow_rules?.policies ?? {}), ['ns[istio-system]-policy[a]-rule[0]']);
  assert.equal(allow?.shadow_rules_stat_prefix, 'istio_dry_run_allow_');
});

test('on TCP an ALLOW rule with an HTTP-only field is left out, a DENY rule only loses that field', () => {
  const [deny, allow] = tcp({
    ...none,
    DENY: [policy('d', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'], ports: ['9000'] } }] }] })],
    ALLOW: [policy('a', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }, { to: [{ operation: { ports: ['9000'] } }] }] })],
  });
  assert.equal(deny?.stat_prefix, 'tcp.');
  assert.deepEqual(deny?.rules?.policies?.['ns[istio-system]-policy[d]-rule[0]']?.permissions, [
    { and_rules: { rules: [{ or_rules: { rules: [{ destination_port: 9000 }] } }] } },
  ]);
  assert.deepEqual(Object.keys(allow?.rules?.policies ?? {}), ['ns[istio-system]-policy[a]-rule[1]']);
});
