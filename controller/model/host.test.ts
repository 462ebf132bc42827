import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkWildcardDomain, compareMoreSpecific, intersection, namesForNamespace, resolveGatewayName, resolveShortName, subsetOf } from './host.ts';

const subsetCases: [string, string, boolean][] = [
  ['a.example.com', '*.example.com', true],
  ['*.example.com', '*', true],
  ['a.example.com', '*', true],
  ['example.com', '*.example.com', false],
  ['*.example.com', 'a.example.com', false],
  ['*.a.example.com', '*.example.com', true],
  ['*.example.com', '*.a.example.com', false],
  ['foo.com', 'foo.com', true],
  ['foo.com', 'bar.com', false],
];
for (const [h, o, want] of subsetCases) test(`${h} is ${want ? '' : 'not '}a subset of ${o}`, () => assert.equal(subsetOf(h, o), want));

const intersectionCases: { server: string[]; vs: string[]; want: string[] }[] = [
  { server: ['*.example.com'], vs: ['a.example.com'], want: ['a.example.com'] },
  { server: ['*'], vs: ['*.org'], want: ['*.org'] },
  { server: ['foo.com'], vs: ['*'], want: ['foo.com'] },
  { server: ['foo.com'], vs: ['bar.com'], want: [] },
  { server: ['*.example.com', 'a.example.com'], vs: ['a.example.com', 'b.example.com'], want: ['a.example.com', 'b.example.com'] },
];
for (const c of intersectionCases) {
  test(`server hosts ${JSON.stringify(c.server)} and VirtualService hosts ${JSON.stringify(c.vs)} intersect to the narrower names`, () =>
    assert.deepEqual(intersection(c.server, c.vs), c.want));
}

test('namespace-qualified server hosts apply only to VirtualServices of that namespace (or */)', () => {
  assert.deepEqual(namesForNamespace(['ns-1/*.example.com', '*/a.com', 'b.com', 'ns-2/c.com'], 'ns-1'), ['*.example.com', 'a.com', 'b.com']);
});

const shortNames: [string, string, string][] = [
  ['httpbin', 'default', 'httpbin.default.svc.cluster.local'],
  ['httpbin.default', 'x', 'httpbin.default'],
  ['*', 'x', '*'],
  ['10.0.0.1', 'x', '10.0.0.1'],
];
for (const [h, ns, want] of shortNames) test(`host ${h} in namespace ${ns} resolves to ${want}`, () => assert.equal(resolveShortName(h, ns), want));

const gatewayNames: [string, string, string][] = [
  ['gw', 'apps', 'apps/gw'],
  ['./gw', 'apps', 'apps/gw'],
  ['istio-system/gw', 'apps', 'istio-system/gw'],
  ['gw.istio-system.svc.cluster.local', 'apps', 'istio-system/gw'],
  ['mesh', 'apps', 'mesh'],
];
for (const [g, ns, want] of gatewayNames) test(`VirtualService gateway ${g} in ${ns} names ${want}`, () => assert.equal(resolveGatewayName(g, ns), want));

test('more specific hosts sort first: exact before wildcard, longer before shorter, then alphabetical', () => {
  assert.deepEqual(['*', '*.b.com', 'b.com', 'a.com', 'long.a.com', '*.x.b.com'].sort(compareMoreSpecific), [
    'long.a.com',
    'a.com',
    'b.com',
    '*.x.b.com',
    '*.b.com',
    '*',
  ]);
});

// istiod's ValidateWildcardDomain, its verdicts and messages (the last four checked with the oracle's istiod on
// DestinationRule hosts).
const domains: [string, string | undefined][] = [
  ['*', undefined],
  ['*.example.com', undefined],
  ['example.com', undefined],
  ['Example.COM', undefined],
  ['example.com.', undefined],
  ['a*.example.com', 'domain name "a*.example.com" invalid (label "a*" invalid)'],
  ['exa mple.com', 'domain name "exa mple.com" invalid (label "exa mple" invalid)'],
  ['', 'empty domain name not allowed'],
  ['*example.com', undefined],
  ['*-foo.example.com', undefined],
  ['foo_bar.example.com', 'domain name "foo_bar.example.com" invalid (label "foo_bar" invalid)'],
  ['foo.123', 'domain name "123" invalid (top level domain "123" cannot be all-numeric)'],
];
for (const [d, want] of domains)
  test(`domain ${JSON.stringify(d)} is ${want === undefined ? 'valid' : 'rejected'}`, () => assert.equal(checkWildcardDomain(d), want));
