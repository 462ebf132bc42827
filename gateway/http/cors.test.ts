import { test } from 'node:test';
import assert from 'node:assert/strict';
import { corsDecode, corsEncode, type CorsRequest } from './cors.ts';
import { compileCorsPolicy, CORS_TYPE } from '../router/cors-policy.ts';

const T = `type.googleapis.com/${CORS_TYPE}`;
// As Istio writes VirtualService corsPolicy.
const istio = compileCorsPolicy(
  {
    '@type': T,
    allow_origin_string_match: [{ exact: 'https://example.com' }, { prefix: 'https://app.' }, { safe_regex: { regex: 'https://.*\\.corp\\.io' } }],
    allow_methods: 'GET,POST',
    allow_headers: 'x-custom,content-type',
    expose_headers: 'x-trace',
    max_age: '86400',
    allow_credentials: true,
    filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
    forward_not_matching_preflights: true,
  },
  'route',
);
const ignore = compileCorsPolicy(
  { '@type': T, allow_origin_string_match: [{ exact: 'https://example.com' }], allow_methods: '*', allow_headers: '*', forward_not_matching_preflights: false },
  'route',
);
const star = compileCorsPolicy({ '@type': T, allow_origin_string_match: [{ exact: '*' }] }, 'route');

const req = (o: Partial<CorsRequest>): CorsRequest => ({
  method: 'OPTIONS',
  origin: undefined,
  requestMethod: 'GET',
  requestHeaders: undefined,
  requestPrivateNetwork: undefined,
  ...o,
});

/** The istio policy's answer to a preflight from an allowed origin: every configured header. */
const istioPreflight = (origin: string): string[] => [
  'access-control-allow-origin',
  origin,
  'access-control-allow-credentials',
  'true',
  'access-control-allow-methods',
  'GET,POST',
  'access-control-allow-headers',
  'x-custom,content-type',
  'access-control-max-age',
  '86400',
];

const cases: { name: string; policy: typeof istio; req: CorsRequest; preflight: string[] | undefined | null; latched: string | undefined }[] = [
  {
    name: 'preflight from an exact origin is answered with every configured header',
    policy: istio,
    req: req({ origin: 'https://example.com' }),
    preflight: istioPreflight('https://example.com'),
    latched: 'https://example.com',
  },
  {
    name: 'prefix origin match',
    policy: istio,
    req: req({ origin: 'https://app.example.org' }),
    preflight: istioPreflight('https://app.example.org'),
    latched: 'https://app.example.org',
  },
  {
    name: 'regex origin match is a full match',
    policy: istio,
    req: req({ origin: 'https://a.corp.io.evil.com', method: 'GET' }),
    preflight: undefined,
    latched: undefined,
  },
  {
    name: 'unmatched origin preflight is forwarded (FORWARD, the default)',
    policy: istio,
    req: req({ origin: 'https://evil.com' }),
    preflight: undefined,
    latched: undefined,
  },
  {
    name: 'unmatched origin preflight is answered without allow-origin (IGNORE)',
    policy: ignore,
    req: req({ origin: 'https://evil.com', requestHeaders: 'x-a' }),
    preflight: ['access-control-allow-methods', 'GET', 'access-control-allow-headers', 'x-a'],
    latched: undefined,
  },
  {
    name: '"*" methods and headers echo the request',
    policy: ignore,
    req: req({ origin: 'https://example.com', requestMethod: 'PUT', requestHeaders: 'x-a,x-b' }),
    preflight: ['access-control-allow-origin', 'https://example.com', 'access-control-allow-methods', 'PUT', 'access-control-allow-headers', 'x-a,x-b'],
    latched: 'https://example.com',
  },
  {
    name: 'an exact "*" origin matcher allows any origin',
    policy: star,
    req: req({ origin: 'https://anything.net' }),
    preflight: ['access-control-allow-origin', 'https://anything.net'],
    latched: 'https://anything.net',
  },
  {
    name: 'OPTIONS without access-control-request-method is not a preflight',
    policy: istio,
    req: req({ origin: 'https://example.com', requestMethod: undefined }),
    preflight: undefined,
    latched: 'https://example.com',
  },
  {
    name: 'a simple GET with an allowed origin is latched',
    policy: istio,
    req: req({ origin: 'https://example.com', method: 'GET' }),
    preflight: undefined,
    latched: 'https://example.com',
  },
  { name: 'no Origin header: not a CORS request', policy: istio, req: req({ origin: undefined }), preflight: null, latched: undefined },
];

for (const c of cases) {
  test(`cors: ${c.name}`, () => {
    const d = corsDecode([c.policy], c.req);
    if (c.preflight === null) {
      assert.equal(d, undefined);
      return;
    }
    assert.ok(d);
    assert.deepEqual(d.preflight, c.preflight);
    assert.equal(d.latchedOrigin, c.latched);
  });
}

test('cors: responses to allowed origins get allow-origin, credentials and expose headers (replacing upstream values)', () => {
  const h = ['content-type', 'text/plain', 'access-control-allow-origin', '*'];
  corsEncode([istio], 'https://example.com', h);
  assert.deepEqual(h, [
    'content-type',
    'text/plain',
    'access-control-allow-origin',
    'https://example.com',
    'access-control-allow-credentials',
    'true',
    'access-control-expose-headers',
    'x-trace',
  ]);
  const untouched = ['content-type', 'text/plain'];
  corsEncode([istio], undefined, untouched);
  assert.deepEqual(untouched, ['content-type', 'text/plain']);
});

test('cors: the route policy wins field by field over the virtual host policy', () => {
  const route = compileCorsPolicy({ '@type': T, allow_methods: 'DELETE' }, 'route');
  const vhost = compileCorsPolicy({ '@type': T, allow_origin_string_match: [{ exact: 'https://example.com' }], allow_methods: 'GET', max_age: '10' }, 'vhost');
  const d = corsDecode([route, vhost], req({ origin: 'https://example.com' }));
  assert.deepEqual(d?.preflight, [
    'access-control-allow-origin',
    'https://example.com',
    'access-control-allow-methods',
    'DELETE',
    'access-control-max-age',
    '10',
  ]);
});

test('cors: filter_enabled 0% and shadow mode do not answer preflights', () => {
  const off = compileCorsPolicy(
    { '@type': T, allow_origin_string_match: [{ exact: 'https://example.com' }], filter_enabled: { default_value: { numerator: 0 } } },
    'r',
  );
  assert.equal(corsDecode([off], req({ origin: 'https://example.com' })), undefined);
  const shadow = compileCorsPolicy(
    {
      '@type': T,
      allow_origin_string_match: [{ exact: 'https://example.com' }],
      filter_enabled: { default_value: { numerator: 0 } },
      shadow_enabled: { default_value: { numerator: 100 } },
    },
    'r',
  );
  assert.equal(corsDecode([shadow], req({ origin: 'https://example.com' })), undefined);
});
