// Delegate VirtualService merging as istiod does it (virtualservice.go mergeHTTPRoute / hasConflict).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HTTPMatchRequest, HTTPRoute, VirtualServiceSpec } from './istio-types.ts';
import { mergeDelegates, resolveVirtualService, type VirtualServiceConfig } from './virtual-services.ts';

function vs(name: string, namespace: string, spec: VirtualServiceSpec): VirtualServiceConfig {
  return resolveVirtualService({
    kind: 'VirtualService',
    apiVersion: 'networking.istio.io/v1',
    name,
    namespace,
    creationTimestamp: '',
    labels: {},
    annotations: {},
    origin: { file: 't' },
    spec,
  });
}

const route = (host: string): HTTPRoute['route'] => [{ destination: { host } }];

function merge(rootMatch: HTTPMatchRequest[] | undefined, delegateMatch: HTTPMatchRequest[] | undefined): HTTPMatchRequest[] | 'dropped' {
  const root = vs('root', 'default', {
    hosts: ['a.example.com'],
    gateways: ['gw'],
    http: [{ name: 'r', ...(rootMatch ? { match: rootMatch } : {}), delegate: { name: 'd' } }],
  });
  const d = vs('d', 'default', { http: [{ name: 'x', ...(delegateMatch ? { match: delegateMatch } : {}), route: route('svc') }] });
  const { virtualServices } = mergeDelegates([root, d]);
  const http = virtualServices[0]?.spec.http ?? [];
  if (http.length === 0) return 'dropped';
  return http[0]?.match ?? [];
}

const cases: { name: string; root: HTTPMatchRequest[] | undefined; leaf: HTTPMatchRequest[] | undefined; want: HTTPMatchRequest[] | 'dropped' }[] = [
  { name: 'no root match: the delegate matches as they are', root: undefined, leaf: [{ uri: { prefix: '/a' } }], want: [{ uri: { prefix: '/a' } }] },
  { name: 'no delegate match: the root matches', root: [{ uri: { prefix: '/a' } }], leaf: undefined, want: [{ uri: { prefix: '/a' } }] },
  {
    name: 'delegate prefix inside the root prefix',
    root: [{ uri: { prefix: '/a' } }],
    leaf: [{ uri: { prefix: '/a/b' } }],
    want: [{ uri: { prefix: '/a/b' } }],
  },
  { name: 'delegate prefix outside the root prefix: dropped', root: [{ uri: { prefix: '/a/b' } }], leaf: [{ uri: { prefix: '/a' } }], want: 'dropped' },
  { name: 'delegate exact under the root prefix', root: [{ uri: { prefix: '/a' } }], leaf: [{ uri: { exact: '/a/x' } }], want: [{ uri: { exact: '/a/x' } }] },
  { name: 'root exact, delegate prefix: dropped', root: [{ uri: { exact: '/a' } }], leaf: [{ uri: { prefix: '/a' } }], want: 'dropped' },
  { name: 'regex on either side conflicts with anything else', root: [{ uri: { regex: '/a.*' } }], leaf: [{ uri: { prefix: '/a' } }], want: 'dropped' },
  {
    name: "headers are combined, the delegate's value wins for the same name",
    root: [{ uri: { prefix: '/a' }, headers: { x: { exact: '1' }, y: { exact: 'root' } } }],
    leaf: [{ headers: { z: { exact: '3' } } }],
    want: [{ uri: { prefix: '/a' }, headers: { x: { exact: '1' }, y: { exact: 'root' }, z: { exact: '3' } } }],
  },
  {
    name: 'a header matcher contradicting the root: dropped',
    root: [{ headers: { x: { exact: '1' } } }],
    leaf: [{ headers: { x: { exact: '2' } } }],
    want: 'dropped',
  },
  { name: 'different ignoreUriCase: dropped', root: [{ uri: { prefix: '/a' }, ignoreUriCase: true }], leaf: [{ uri: { prefix: '/a' } }], want: 'dropped' },
  {
    name: 'a delegate match fitting one of two root matches merges with that one only',
    root: [{ uri: { prefix: '/a' } }, { uri: { prefix: '/b' } }],
    leaf: [{ uri: { prefix: '/b/c' } }],
    want: [{ uri: { prefix: '/b/c' } }],
  },
  {
    name: 'a delegate match without uri merges with every root match',
    root: [{ uri: { prefix: '/a' } }, { uri: { prefix: '/b' } }],
    leaf: [{ method: { exact: 'GET' } }],
    want: [
      { method: { exact: 'GET' }, uri: { prefix: '/a' } },
      { method: { exact: 'GET' }, uri: { prefix: '/b' } },
    ],
  },
  { name: 'names join root-delegate', root: [{ name: 'r', uri: { prefix: '/a' } }], leaf: [{ name: 'l' }], want: [{ name: 'r-l', uri: { prefix: '/a' } }] },
];

for (const c of cases) {
  test(`delegate match merge: ${c.name}`, () => assert.deepEqual(merge(c.root, c.leaf), c.want));
}

test('delegate rule fields win; the root fills timeout, retries, headers and fault; rule names join; short hosts resolve in the delegate namespace', () => {
  const root = vs('root', 'web', {
    hosts: ['a.example.com'],
    gateways: ['gw'],
    http: [
      {
        name: 'api',
        match: [{ uri: { prefix: '/api' } }],
        timeout: '5s',
        retries: { attempts: 1 },
        headers: { request: { set: { x: 'root' } } },
        delegate: { name: 'd', namespace: 'team' },
      },
    ],
  });
  const d = vs('d', 'team', { http: [{ name: 'v2', timeout: '1s', route: route('reviews') }] });
  const { virtualServices, problems } = mergeDelegates([root, d]);
  assert.deepEqual(problems, []);
  assert.equal(virtualServices.length, 1, 'the delegate is not a VirtualService of its own');
  const r = virtualServices[0]?.spec.http?.[0];
  assert.equal(r?.name, 'api-v2');
  assert.equal(r?.timeout, '1s');
  assert.deepEqual(r?.retries, { attempts: 1 });
  assert.deepEqual(r?.headers, { request: { set: { x: 'root' } } });
  assert.equal(r?.delegate, undefined);
  assert.equal(r?.route?.[0]?.destination.host, 'reviews.team.svc.cluster.local');
});

test('a missing delegate or one not exported to the root namespace drops the rule and is reported', () => {
  const root = vs('root', 'web', {
    hosts: ['a.example.com'],
    gateways: ['gw'],
    http: [{ delegate: { name: 'gone' } }, { delegate: { name: 'private', namespace: 'team' } }, { route: route('x') }],
  });
  const priv = vs('private', 'team', { exportTo: ['.'], http: [{ route: route('y') }] });
  const { virtualServices, problems } = mergeDelegates([root, priv]);
  assert.equal(virtualServices[0]?.spec.http?.length, 1);
  assert.deepEqual(
    problems.map((p) => [p.index, p.message]),
    [
      [0, 'delegate virtual service web/gone not found: the rule is ignored'],
      [1, 'delegate virtual service team/private is not exported to web: the rule is ignored'],
    ],
  );
});

test('mirror_percent (the proto name, kept by the CRD) is read as mirrorPercent, which wins when both are set', () => {
  const http = (r: HTTPRoute): HTTPRoute | undefined => vs('m', 'default', { hosts: ['a.example.com'], http: [r] }).spec.http?.[0];
  const proto = http({ route: route('svc'), mirror: { host: 'shadow' }, mirror_percent: 25 });
  assert.equal(proto?.mirrorPercent, 25);
  assert.equal(proto?.mirror_percent, undefined);
  assert.equal(http({ route: route('svc'), mirror: { host: 'shadow' }, mirrorPercent: 10, mirror_percent: 25 })?.mirrorPercent, 10);
});
