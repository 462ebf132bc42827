// Issue 13's property: no combination of AuthorizationPolicies lets a request through that a DENY rule matches.
// Random ALLOW, DENY, AUDIT and dry-run policies over a small vocabulary (paths with Istio's prefix, suffix and
// template forms, methods, source IP blocks, a header, hosts, their not* forms) go through the controller's
// translation (as istiod builds it) and the proxy's RBAC engine, in chain order; an independent evaluator of
// Istio's documented semantics says whether an enforced DENY rule matches the random request. When one does,
// the request must be denied; when none applies and no ALLOW policy exists, it must be allowed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { unpackAny } from '../../xds/envoy.ts';
import { selectAuthorizationPolicies, type AuthorizationPolicyConfig } from '../../controller/model/authorization-policies.ts';
import type { Rule } from '../../controller/model/security-types.ts';
import { rbacHttpFilters } from '../../controller/translate/rbac.ts';
import { decideHttpRbac, parseHttpRbac, type RbacRequest } from './engine.ts';

const PATHS = ['/a', '/a/*', '*/b', '/c/{*}/d', '/c/{**}', '/'];
const METHODS = ['GET', 'POST', 'DELETE'];
const BLOCKS = ['10.0.0.0/8', '10.1.2.3', '192.168.0.0/16'];
const HOSTS = ['x.example.com', '*.example.com'];
const HEADER_VALUES = ['v1', 'v*'];

interface Req {
  method: string;
  path: string;
  ip: string;
  host: string;
  header: string | undefined;
}

// Istio's semantics for the vocabulary (docs: "Authorization Policy" reference), written independently of both
// the translator and the engine.
function pathMatches(pattern: string, path: string): boolean {
  if (pattern.includes('{')) {
    const re = pattern
      .split('/')
      .map((seg) => (seg === '{*}' ? '[^/]+' : seg === '{**}' ? '.*' : seg.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
      .join('/');
    return new RegExp(`^${re}$`).test(path);
  }
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return path.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return path.endsWith(pattern.slice(1));
  return path === pattern;
}
const ipToInt = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
function inBlock(block: string, ip: string): boolean {
  const [addr = '', bits = '32'] = block.split('/');
  const n = Number(bits);
  const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return (ipToInt(addr) & mask) >>> 0 === (ipToInt(ip) & mask) >>> 0;
}
const hostMatches = (pattern: string, host: string): boolean =>
  pattern.startsWith('*') ? host.toLowerCase().endsWith(pattern.slice(1).toLowerCase()) : host.toLowerCase() === pattern.toLowerCase();
const valueMatches = (pattern: string, v: string | undefined): boolean =>
  v !== undefined && (pattern.endsWith('*') ? v.startsWith(pattern.slice(0, -1)) : v === pattern);

/** A field list of a rule matches when it is absent, or (positive) any value matches / (not*) none matches. */
const listOk = (values: string[] | undefined, m: (x: string) => boolean, negate = false): boolean =>
  values === undefined || (negate ? !values.some(m) : values.some(m));

function ruleMatches(r: Rule, q: Req): boolean {
  const froms = r.from ?? [];
  const tos = r.to ?? [];
  const fromOk =
    froms.length === 0 ||
    froms.some(({ source: s = {} }) => listOk(s.ipBlocks, (b) => inBlock(b, q.ip)) && listOk(s.notIpBlocks, (b) => inBlock(b, q.ip), true));
  const toOk =
    tos.length === 0 ||
    tos.some(
      ({ operation: o = {} }) =>
        listOk(o.paths, (p) => pathMatches(p, q.path)) &&
        listOk(o.notPaths, (p) => pathMatches(p, q.path), true) &&
        listOk(o.methods, (m) => m === q.method) &&
        listOk(o.notMethods, (m) => m === q.method, true) &&
        listOk(o.hosts, (h) => hostMatches(h, q.host)),
    );
  const whenOk = (r.when ?? []).every((c) =>
    c.key === 'request.headers[x-k]' ? listOk(c.values, (v) => valueMatches(v, q.header)) && listOk(c.notValues, (v) => valueMatches(v, q.header), true) : true,
  );
  return fromOk && toOk && whenOk;
}

// A field is usually absent, so that rules are loose enough to match often.
const sub = <T>(xs: readonly T[]): fc.Arbitrary<T[] | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, { arbitrary: fc.subarray([...xs], { minLength: 1 }), weight: 1 });
const ruleArb: fc.Arbitrary<Rule> = fc
  .record({
    ipBlocks: sub(BLOCKS),
    notIpBlocks: sub(BLOCKS),
    paths: sub(PATHS),
    notPaths: sub(PATHS),
    methods: sub(METHODS),
    notMethods: sub(METHODS),
    hosts: sub(HOSTS),
    header: sub(HEADER_VALUES),
  })
  .map((f) => {
    const source = Object.fromEntries(Object.entries({ ipBlocks: f.ipBlocks, notIpBlocks: f.notIpBlocks }).filter(([, v]) => v !== undefined));
    const operation = Object.fromEntries(
      Object.entries({ paths: f.paths, notPaths: f.notPaths, methods: f.methods, notMethods: f.notMethods, hosts: f.hosts }).filter(([, v]) => v !== undefined),
    );
    const r: Rule = {};
    if (Object.keys(source).length) r.from = [{ source }];
    if (Object.keys(operation).length) r.to = [{ operation }];
    if (f.header) r.when = [{ key: 'request.headers[x-k]', values: f.header }];
    return r;
  });
const policyArb = fc.record({
  action: fc.constantFrom('ALLOW', 'DENY', 'AUDIT'),
  dryRun: fc.boolean(),
  rules: fc.array(ruleArb, { minLength: 1, maxLength: 3 }),
});
const reqArb: fc.Arbitrary<Req> = fc.record({
  method: fc.constantFrom(...METHODS),
  path: fc.constantFrom('/a', '/a/x', '/x/b', '/c/1/d', '/c/1/2/d', '/c', '/', '/zz'),
  ip: fc.constantFrom('10.1.2.3', '10.9.9.9', '192.168.1.1', '172.16.0.1'),
  host: fc.constantFrom('x.example.com', 'y.example.com', 'X.EXAMPLE.COM', 'other.org'),
  header: fc.option(fc.constantFrom('v1', 'v2', 'w'), { nil: undefined }),
});

const dryRunAnnotation = (on: boolean): Record<string, string> => (on ? { 'istio.io/dry-run': 'true' } : {});

test('no combination of AuthorizationPolicies lets through a request that an enforced DENY rule matches', () => {
  // How often each kind of case came up: a property that never met a matching DENY would prove nothing.
  const seen = { denyMatched: 0, allowDecided: 0 };
  fc.assert(
    fc.property(fc.array(policyArb, { minLength: 1, maxLength: 5 }), reqArb, (specs, q) => {
      const configs: AuthorizationPolicyConfig[] = specs.map((s, i) => ({
        kind: 'AuthorizationPolicy',
        apiVersion: 'security.istio.io/v1',
        name: `p${i}`,
        namespace: 'istio-system',
        creationTimestamp: '',
        labels: {},
        annotations: dryRunAnnotation(s.dryRun && s.action !== 'AUDIT'),
        origin: {},
        spec: { action: s.action, rules: s.rules },
      }));
      const filters = rbacHttpFilters(selectAuthorizationPolicies(configs, 'istio-system', 'istio-system', { istio: 'ingressgateway' })).map((f, i) =>
        parseHttpRbac(unpackAny(f.typed_config ?? { '@type': '' }, 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC'), `filter[${i}]`),
      );
      const req: RbacRequest = {
        method: q.method,
        authority: q.host,
        path: q.path,
        scheme: 'http',
        headers: q.header === undefined ? [] : ['x-k', q.header],
        directRemoteIp: q.ip,
        remoteIp: q.ip,
        destinationIp: '10.200.0.1',
        destinationPort: 8080,
        sni: undefined,
        peerCertificate: undefined,
        metadata: () => undefined,
      };
      const allowed = filters.every((f) => decideHttpRbac(f, req).allowed);
      const enforced = specs.filter((s) => !s.dryRun);
      const denyMatches = enforced.some((s) => s.action === 'DENY' && s.rules.some((r) => ruleMatches(r, q)));
      if (denyMatches) {
        seen.denyMatched++;
        assert.equal(allowed, false, 'an enforced DENY rule matches: the request must be denied');
      }
      const anyAllow = enforced.some((s) => s.action === 'ALLOW');
      if (!denyMatches && !anyAllow) assert.equal(allowed, true, 'no DENY matches and no ALLOW policy applies: allowed');
      if (!denyMatches && anyAllow) {
        const allowMatches = enforced.some((s) => s.action === 'ALLOW' && s.rules.some((r) => ruleMatches(r, q)));
        if (allowMatches) seen.allowDecided++;
        assert.equal(allowed, allowMatches, 'with ALLOW policies, allowed exactly when one of their rules matches');
      }
    }),
    { numRuns: 2000, seed: 20261207 },
  );
  assert.ok(seen.denyMatched > 200 && seen.allowDecided > 100, `too few decisive cases: ${JSON.stringify(seen)}`);
});
