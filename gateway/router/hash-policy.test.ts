import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileHashPolicy, makeSetCookieValue, type HashContext } from './hash-policy.ts';
import { compileMirrorPolicies, shadowHost } from './mirror.ts';
import { uint64ToHex, xxHash64 } from '../upstream/xxhash64.ts';
import type { envoy } from '../../xds/envoy.ts';

const ctx = (o: Partial<HashContext>): HashContext => ({
  headers: [],
  path: '/',
  remoteAddress: '10.1.2.3',
  remotePort: 40000,
  localAddress: '10.0.0.1',
  localPort: 8080,
  setCookies: [],
  ...o,
});

const cases: { name: string; policy: envoy.config.route.v3.RouteAction.HashPolicy[]; ctx: HashContext; want: bigint | undefined; cookies?: string[] }[] = [
  { name: 'header value', policy: [{ header: { header_name: 'X-User' } }], ctx: ctx({ headers: ['x-user', 'jason'] }), want: xxHash64('jason') },
  { name: 'missing header: no hash', policy: [{ header: { header_name: 'x-user' } }], ctx: ctx({}), want: undefined },
  { name: 'source IP', policy: [{ connection_properties: { source_ip: true } }], ctx: ctx({}), want: xxHash64('10.1.2.3') },
  { name: 'query parameter', policy: [{ query_parameter: { name: 'u' } }], ctx: ctx({ path: '/a?x=1&u=bob' }), want: xxHash64('bob') },
  {
    name: 'cookie present (quotes stripped)',
    policy: [{ cookie: { name: 'sid', ttl: '10s' } }],
    ctx: ctx({ headers: ['cookie', 'a=1; sid="abc"'] }),
    want: xxHash64('abc'),
    cookies: [],
  },
  { name: 'cookie absent without ttl: no hash, no cookie', policy: [{ cookie: { name: 'sid' } }], ctx: ctx({}), want: undefined, cookies: [] },
  {
    name: 'cookie absent with ttl: generated from the connection addresses and set on the response',
    policy: [{ cookie: { name: 'sid', ttl: '3600s', path: '/app' } }],
    ctx: ctx({}),
    want: xxHash64(uint64ToHex(xxHash64('10.1.2.3:4000010.0.0.1:8080'))),
    cookies: [`sid="${uint64ToHex(xxHash64('10.1.2.3:4000010.0.0.1:8080'))}"; Max-Age=3600; Path=/app; HttpOnly`],
  },
  {
    name: 'two policies combine as rotl(h1, 1) ^ h2',
    policy: [{ header: { header_name: 'a' } }, { header: { header_name: 'b' } }],
    ctx: ctx({ headers: ['a', '1', 'b', '2'] }),
    want: (((xxHash64('1') << 1n) | (xxHash64('1') >> 63n)) & ((1n << 64n) - 1n)) ^ xxHash64('2'),
  },
  {
    name: 'a terminal policy that hashed stops evaluation',
    policy: [{ header: { header_name: 'a' }, terminal: true }, { header: { header_name: 'b' } }],
    ctx: ctx({ headers: ['a', '1', 'b', '2'] }),
    want: xxHash64('1'),
  },
];

for (const c of cases) {
  test(`hash policy: ${c.name}`, () => {
    const f = compileHashPolicy(c.policy, 'route.hash_policy');
    assert.ok(f);
    assert.equal(f(c.ctx), c.want);
    if (c.cookies) assert.deepEqual(c.ctx.setCookies, c.cookies);
  });
}

test('hash policy: none configured compiles to undefined', () => assert.equal(compileHashPolicy(undefined, 'r'), undefined));

test('set-cookie value as Envoy writes it (attributes, HttpOnly last)', () => {
  assert.equal(makeSetCookieValue('c', 'v', '', 0, []), 'c="v"; HttpOnly');
  assert.equal(
    makeSetCookieValue('c', 'v', '/', 60, [
      { name: 'SameSite', value: 'Strict' },
      { name: 'Secure', value: '' },
    ]),
    'c="v"; Max-Age=60; Path=/; SameSite=Strict; Secure; HttpOnly',
  );
});

const hostCases: [string, string][] = [
  ['app.example.com', 'app.example.com-shadow'],
  ['app.example.com:8080', 'app.example.com-shadow:8080'],
  ['10.0.0.1:80', '10.0.0.1-shadow:80'],
  ['[::1]:80', '[::1]-shadow:80'],
];
for (const [h, want] of hostCases) test(`shadow host of ${h} is ${want}`, () => assert.equal(shadowHost(h), want));

test('mirror policies: Istio >= 1.28 disables the suffix; fractions as probabilities', () => {
  const m = compileMirrorPolicies(
    [
      {
        cluster: 'outbound|80||shadow.default.svc.cluster.local',
        runtime_fraction: { default_value: { numerator: 100 } },
        trace_sampled: false,
        disable_shadow_host_suffix_append: true,
      },
      { cluster: 'b', runtime_fraction: { default_value: { numerator: 250000, denominator: 'MILLION' } } },
      { cluster: 'c' },
    ],
    'route.request_mirror_policies',
  );
  assert.deepEqual(m, [
    { cluster: 'outbound|80||shadow.default.svc.cluster.local', probability: 1, appendShadowSuffix: false },
    { cluster: 'b', probability: 0.25, appendShadowSuffix: true },
    { cluster: 'c', probability: 1, appendShadowSuffix: true },
  ]);
});
