// AuthorizationPolicy decoding and validation: what istiod's webhook refuses is refused, with its message and
// the field it is about; what it takes is taken (the istiod differential checks both on every golden input).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateAuthorizationPolicy } from './authorization-policy-validation.ts';

const meta = (annotations: Record<string, string> = {}) => ({ name: 'p', namespace: 'ns', annotations });

const cases: { name: string; spec: unknown; annotations?: Record<string, string>; field?: string; message?: RegExp }[] = [
  { name: 'no spec (ALLOW nothing)', spec: undefined },
  { name: 'an empty rule', spec: { rules: [{}] } },
  { name: 'a numeric action', spec: { action: 1, rules: [{}] } },
  { name: 'unknown fields are ignored', spec: { rules: [{ form: [] }], extra: true } },
  { name: 'dry-run true on ALLOW', spec: { rules: [{}] }, annotations: { 'istio.io/dry-run': 'T' } },
  { name: 'a lower-case action', spec: { action: 'deny' }, field: 'spec.action', message: /unknown value "deny" for enum/ },
  {
    name: 'a number where a string is expected',
    spec: { rules: [{ to: [{ operation: { ports: [80] } }] }] },
    field: 'spec.rules[0].to[0].operation.ports[0]',
    message: /must be a string/,
  },
  { name: 'rules that are not a list', spec: { rules: {} }, field: 'spec.rules', message: /must be a list/ },
  {
    name: 'dry-run on AUDIT',
    spec: { action: 'AUDIT', rules: [{}] },
    annotations: { 'istio.io/dry-run': 'true' },
    field: 'metadata.annotations[istio.io/dry-run]',
    message: /only supports action ALLOW\/DENY, found action AUDIT in ns\/p/,
  },
  { name: 'dry-run not a Go boolean', spec: { rules: [{}] }, annotations: { 'istio.io/dry-run': 'yes' }, message: /invalid value \(yes\): strconv.ParseBool/ },
  { name: 'DENY without rules', spec: { action: 'DENY', rules: [] }, field: 'spec.rules', message: /DENY action without `rules` is meaningless/ },
  { name: 'CUSTOM without provider', spec: { action: 'CUSTOM', rules: [{}] }, field: 'spec.provider.name', message: /`provider.name` must not be empty/ },
  {
    name: 'CUSTOM with principals',
    spec: { action: 'CUSTOM', provider: { name: 'x' }, rules: [{ from: [{ source: { principals: ['a'] } }] }] },
    message: /From.Principals is currently not supported with CUSTOM action/,
  },
  {
    name: 'a provider on ALLOW',
    spec: { provider: { name: 'x' }, rules: [{}] },
    field: 'spec.provider',
    message: /must not be with non CUSTOM action, found ALLOW/,
  },
  {
    name: 'selector and targetRef',
    spec: { selector: { matchLabels: { a: 'b' } }, targetRef: { kind: 'Service', name: 's' } },
    field: 'spec',
    message: /only one of targetRefs or workloadSelector/,
  },
  {
    name: 'a targetRef to a Pod',
    spec: { targetRefs: [{ kind: 'Pod', name: 'p' }] },
    field: 'spec.targetRefs[0]',
    message: /targetRef must be to one of .* but was \/Pod/,
  },
  { name: 'a wildcard label', spec: { selector: { matchLabels: { app: 'a*' } } }, message: /wildcard is not supported in selector: "app=a\*"/ },
  {
    name: 'an empty source',
    spec: { rules: [{ from: [{ source: {} }] }] },
    field: 'spec.rules[0].from[0].source',
    message: /`from.source` must not be empty, found at rule 0/,
  },
  { name: 'a null source', spec: { rules: [{ from: [null] }] }, field: 'spec.rules[0].from[0].source', message: /`from.source` must not be nil/ },
  {
    name: 'a bad CIDR',
    spec: { rules: [{ from: [{ source: { ipBlocks: ['1.2.3.4/33'] } }] }] },
    message: /bad CIDR range \(1.2.3.4\/33\): netip.ParsePrefix\("1.2.3.4\/33"\): prefix length out of range/,
  },
  {
    name: 'serviceAccounts with namespaces',
    spec: { rules: [{ from: [{ source: { namespaces: ['a'], serviceAccounts: ['b'] } }] }] },
    message: /cannot set serviceAccounts with namespaces or principals/,
  },
  { name: 'a trust domain with a slash', spec: { rules: [{ from: [{ source: { trustDomains: ['a/b'] } }] }] }, message: /trust domain must not contain '\/'/ },
  { name: 'a port out of range', spec: { rules: [{ to: [{ operation: { ports: ['70000'] } }] }] }, message: /bad port \(70000\): <nil>/ },
  { name: 'a null method', spec: { rules: [{ to: [{ operation: { methods: [null] } }] }] }, message: /empty value not allowed, found in Methods/ },
  {
    name: '{**} before {*}',
    spec: { rules: [{ to: [{ operation: { paths: ['/a/{**}/{*}'] } }] }] },
    message: /invalid or unsupported path a\/\{\*\*\}\/\{\*\}, found in Paths. \{\*\*\} is not the last operator/,
  },
  {
    name: 'a template with a bad literal',
    spec: { rules: [{ to: [{ operation: { paths: ['/a b/{*}'] } }] }] },
    message: /Contains segment a b with invalid string literal/,
  },
  {
    name: 'an unknown when key',
    spec: { rules: [{ when: [{ key: 'foo', values: ['a'] }] }] },
    message: /invalid `value` for `key` foo: unknown attribute: foo/,
  },
  {
    name: 'a when without values',
    spec: { rules: [{ when: [{ key: 'source.ip' }] }] },
    message: /at least one of `values` or `notValues` must be set for key source.ip/,
  },
  {
    name: 'destination.labels',
    spec: { rules: [{ when: [{ key: 'destination.labels[a]', values: ['b'] }] }] },
    message: /is replaced by the workload selector/,
  },
];

for (const c of cases) {
  test(`AuthorizationPolicy validation: ${c.name}`, () => {
    const { errors } = validateAuthorizationPolicy(meta(c.annotations), c.spec);
    if (!c.message) return assert.deepEqual(errors, []);
    const e = errors.find((x) => c.message?.test(x.message));
    assert.ok(e, `expected ${String(c.message)} in ${JSON.stringify(errors)}`);
    if (c.field) assert.equal(e.field, c.field);
  });
}

test('AuthorizationPolicy decoding: null items are empty messages, empty lists are absent', () => {
  const { spec, errors } = validateAuthorizationPolicy(meta(), { rules: [null, { from: [], to: [], when: [] }] });
  assert.deepEqual(errors, []);
  assert.deepEqual(spec, { rules: [{}, {}] });
});

test('fields by their proto names decode as istiod decodes them', () => {
  const { spec, errors } = validateAuthorizationPolicy(meta(), {
    selector: { match_labels: { app: 'a' } },
    rules: [{ from: [{ source: { request_principals: ['a/b'], not_ip_blocks: ['10.0.0.0/8'] } }], when: [{ key: 'source.ip', not_values: ['1.2.3.4'] }] }],
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(spec, {
    selector: { matchLabels: { app: 'a' } },
    rules: [{ from: [{ source: { requestPrincipals: ['a/b'], notIpBlocks: ['10.0.0.0/8'] } }], when: [{ notValues: ['1.2.3.4'], key: 'source.ip' }] }],
  });
});
