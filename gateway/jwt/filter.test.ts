import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompactSign, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import type { envoy } from '../../xds/envoy.ts';
import { ConfigError } from '../xds/json.ts';
import { claimNumberString, JwtAuthnFilter, parseJwtAuthn, parseJwtPerRoute, type JwtRequest, type JwtResult } from './filter.ts';

type JwtAuthentication = envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;
type JwtProvider = envoy.extensions.filters.http.jwt_authn.v3.JwtProvider;
type JwtRequirement = envoy.extensions.filters.http.jwt_authn.v3.JwtRequirement;

const NOW = 1_700_000_000; // seconds
const now = (): number => NOW * 1000 + 250;

interface Signer {
  alg: string;
  key: CryptoKey | Uint8Array;
  /** The public JWK as a JWKS lists it (with kid). */
  jwk: JWK;
}

async function signer(alg: string, kid: string, opts: { crv?: string } = {}): Promise<Signer> {
  if (alg.startsWith('HS')) {
    const secret = new Uint8Array(32).map((_, i) => (i * 7 + kid.length) & 0xff);
    return { alg, key: secret, jwk: { kty: 'oct', k: Buffer.from(secret).toString('base64url'), kid } };
  }
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(opts.crv ? { crv: opts.crv } : {}) });
  return { alg, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid } };
}

async function sign(s: Signer, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: s.alg, kid: s.jwk.kid, ...header }).sign(s.key);
}

/** A token whose payload section is exactly `payloadJson` (for what JSON.stringify cannot produce). */
async function signRaw(s: Signer, payloadJson: string, header: Record<string, unknown> = {}): Promise<string> {
  return new CompactSign(Buffer.from(payloadJson, 'utf8')).setProtectedHeader({ alg: s.alg, kid: s.jwk.kid, ...header }).sign(s.key);
}

const jwks = (...keys: JWK[]): envoy.config.core.v3.DataSource => ({ inline_string: JSON.stringify({ keys }) });

function req(o: { path?: string; method?: string; headers?: string[] } = {}): JwtRequest {
  return { method: o.method ?? 'GET', path: o.path ?? '/', headers: o.headers ?? [] };
}

async function run(f: JwtAuthnFilter, r: JwtRequest): Promise<JwtResult> {
  return f.authenticate(r, 'http', 'example.com');
}

const headerValues = (r: JwtRequest, name: string): string[] => r.headers.filter((_, i) => i % 2 === 1 && r.headers[i - 1] === name);

// Keys shared by the tests.
const rs = await signer('RS256', 'rs-1');
const rsOther = await signer('RS256', 'rs-1'); // same kid, another key
const other = await signer('RS256', 'other');

const ISSUER_0 = 'other@example.com';
const ISSUER_1 = 'testing@secure.istio.io';

/** istiod's output for a RequestAuthentication with two jwtRules (origins-1 with every location option). */
function istiodConfig(k0: JWK, k1: JWK): JwtAuthentication {
  return {
    providers: {
      'origins-0': {
        issuer: ISSUER_0,
        local_jwks: jwks(k0),
        payload_in_metadata: 'payload',
        normalize_payload_in_metadata: { space_delimited_claims: ['permission', 'scope'] },
        clear_route_cache: true,
      },
      'origins-1': {
        issuer: ISSUER_1,
        audiences: ['aud1'],
        local_jwks: jwks(k1),
        forward: true,
        from_headers: [{ name: 'x-jwt', value_prefix: 'Bearer ' }],
        from_params: ['token'],
        from_cookies: ['session'],
        forward_payload_header: 'x-jwt-payload',
        payload_in_metadata: 'payload',
        normalize_payload_in_metadata: { space_delimited_claims: ['permission', 'scope'] },
        claim_to_headers: [{ header_name: 'x-sub', claim_name: 'sub' }],
        clear_route_cache: true,
      },
    },
    rules: [
      {
        match: { prefix: '/' },
        requires: {
          requires_any: {
            requirements: [
              { provider_name: 'origins-0' },
              { provider_name: 'origins-1' },
              {
                requires_all: {
                  requirements: [
                    { requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] } },
                    { requires_any: { requirements: [{ provider_name: 'origins-1' }, { allow_missing: {} }] } },
                  ],
                },
              },
            ],
          },
        },
      },
    ],
    bypass_cors_preflight: true,
  };
}

const k1 = await signer('RS256', 'DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ');
const istiod = new JwtAuthnFilter(istiodConfig(rs.jwk, k1.jwk), 'jwt', { now });
const claims0 = { iss: ISSUER_0, sub: 'alice', exp: NOW + 3600, scope: 'read  write', permission: ['a'] };
const claims1 = { iss: ISSUER_1, sub: 'bob', aud: 'aud1', exp: NOW + 3600, scope: 'x y' };
const tok0 = await sign(rs, claims0);
const tok1 = await sign(k1, claims1);

const INVALID = ', error="invalid_token"';

test("istiod's two-rule config: no token passes, each issuer's token at its own locations passes with its side effects", async () => {
  const none = await run(istiod, req());
  assert.deepEqual(none, { allowed: true, metadata: {}, clearRouteCache: false });

  // origins-0: default locations, forward false (the Authorization header is removed), normalized scope.
  const r0 = req({ headers: ['authorization', `Bearer ${tok0}`, 'x-other', '1'] });
  const a0 = await run(istiod, r0);
  assert.equal(a0.allowed, true);
  assert.deepEqual(r0.headers, ['x-other', '1']);
  assert.deepEqual(a0.metadata, { payload: { ...claims0, scope: ['read', 'write'] } });
  assert.equal(a0.clearRouteCache, true);

  // origins-1 in x-jwt: forwarded, payload header (the token's own payload section) and claim header added.
  const r1 = req({ headers: ['x-jwt', `Bearer ${tok1}`, 'x-jwt-payload', 'forged', 'x-sub', 'forged'] });
  const a1 = await run(istiod, r1);
  assert.equal(a1.allowed, true);
  assert.deepEqual(headerValues(r1, 'x-jwt'), [`Bearer ${tok1}`]);
  assert.deepEqual(headerValues(r1, 'x-jwt-payload'), [tok1.split('.')[1]]);
  assert.deepEqual(headerValues(r1, 'x-sub'), ['bob']);
  assert.deepEqual(a1.metadata, { payload: { ...claims1, scope: ['x', 'y'] } });

  // origins-1 in its query parameter and in its cookie.
  const rq = req({ path: `/p?token=${tok1}&b=2` });
  assert.equal((await run(istiod, rq)).allowed, true);
  assert.equal(rq.path, `/p?token=${tok1}&b=2`);
  assert.equal((await run(istiod, req({ headers: ['cookie', `a=1; session="${tok1}"`] }))).allowed, true);

  // origins-0 in access_token: removed, and the query reprinted as Envoy prints it (sorted, decoded).
  const rp = req({ path: `/p?z=%41&access_token=${tok0}&a=1&a=0` });
  assert.equal((await run(istiod, rp)).allowed, true);
  assert.equal(rp.path, '/p?a=1&a=0&z=A');
});

test("istiod's config: failures and their replies", async () => {
  const cases: [string, JwtRequest, number, string, boolean][] = [
    ['origins-1 token at origins-0 location', req({ headers: ['authorization', `Bearer ${tok1}`] }), 401, 'Jwt issuer is not configured', true],
    ['expired', req({ headers: ['authorization', `Bearer ${await sign(rs, { ...claims0, exp: NOW - 61 })}`] }), 401, 'Jwt is expired', true],
    ['wrong audience', req({ headers: ['x-jwt', `Bearer ${await sign(k1, { ...claims1, aud: ['aud2'] })}`] }), 403, 'Audiences in Jwt are not allowed', true],
    [
      'no audience at all',
      req({ headers: ['x-jwt', `Bearer ${await sign(k1, { ...claims1, aud: undefined })}`] }),
      403,
      'Audiences in Jwt are not allowed',
      true,
    ],
    ['signed by another key', req({ headers: ['authorization', `Bearer ${await sign(rsOther, claims0)}`] }), 401, 'Jwt verification fails', true],
    [
      'unknown kid',
      req({ headers: ['authorization', `Bearer ${await sign(other, claims0)}`] }),
      401,
      "Jwks doesn't have key to match kid or alg from Jwt",
      true,
    ],
    [
      'two sections',
      req({ headers: ['authorization', 'Bearer abc.def'] }),
      401,
      'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
      true,
    ],
    ['header not base64', req({ headers: ['authorization', 'Bearer a*b.c.d'] }), 401, 'Jwt header is an invalid Base64url encoded', true],
  ];
  for (const [name, r, status, body, invalid] of cases) {
    const res = await run(istiod, r);
    assert.equal(res.allowed, false, name);
    assert.equal(res.status, status, name);
    assert.equal(res.body, body, name);
    assert.equal(res.details, `jwt_authn_access_denied{${body.replaceAll(' ', '_')}}`, name);
    assert.equal(res.wwwAuthenticate, `Bearer realm="http://example.com/"${invalid ? INVALID : ''}`, name);
  }
});

test('bypass_cors_preflight: an OPTIONS with Origin and Access-Control-Request-Method passes untouched', async () => {
  const bad = ['authorization', 'Bearer x.y.z'];
  const pre = req({ method: 'OPTIONS', headers: ['origin', 'https://a', 'access-control-request-method', 'GET', ...bad] });
  assert.equal((await run(istiod, pre)).allowed, true);
  assert.deepEqual(pre.headers.slice(4), bad);
  assert.equal((await run(istiod, req({ method: 'OPTIONS', headers: ['origin', 'https://a', ...bad] }))).allowed, false);
  assert.equal((await run(istiod, req({ method: 'OPTIONS', headers: ['origin', '', 'access-control-request-method', 'GET', ...bad] }))).allowed, false);
  const noBypass = new JwtAuthnFilter({ ...istiodConfig(rs.jwk, k1.jwk), bypass_cors_preflight: false }, 'jwt', { now });
  assert.equal((await run(noBypass, pre)).allowed, false);
});

/** One provider `p` with the rule istiod writes for a single jwtRule (`p` or a missing token). */
function single(p: Partial<JwtProvider>, requires?: JwtRequirement, extra: Partial<JwtAuthentication> = {}): JwtAuthnFilter {
  return new JwtAuthnFilter(
    {
      providers: { p: { issuer: 'iss', local_jwks: jwks(rs.jwk), ...p } },
      rules: [{ match: { prefix: '/' }, requires: requires ?? { requires_any: { requirements: [{ provider_name: 'p' }, { allow_missing: {} }] } } }],
      ...extra,
    },
    'jwt',
    { now },
  );
}

const bearer = (t: string): JwtRequest => req({ headers: ['authorization', `Bearer ${t}`] });

test('every algorithm Envoy implements verifies with its key; the wrong key or kid fails', async () => {
  const algs: [string, { crv?: string }][] = [
    ['RS256', {}],
    ['RS384', {}],
    ['RS512', {}],
    ['PS256', {}],
    ['PS384', {}],
    ['PS512', {}],
    ['ES256', {}],
    ['ES384', {}],
    ['ES512', {}],
    ['EdDSA', { crv: 'Ed25519' }],
    ['HS256', {}],
    ['HS384', {}],
    ['HS512', {}],
  ];
  for (const [alg, opts] of algs) {
    const s = await signer(alg, `k-${alg}`, opts);
    const wrong = await signer(alg, `k-${alg}`, opts);
    if (wrong.key instanceof Uint8Array) wrong.key[0] = (wrong.key[0] ?? 0) ^ 1;
    const f = single({ local_jwks: jwks(s.jwk) }, { provider_name: 'p' });
    const claims = { iss: 'iss', exp: NOW + 10 };
    assert.equal((await run(f, bearer(await sign(s, claims)))).allowed, true, alg);
    assert.equal((await run(f, bearer(await sign(wrong, claims)))).body, 'Jwt verification fails', alg);
    assert.equal((await run(f, bearer(await sign(s, claims, { kid: 'nope' })))).body, "Jwks doesn't have key to match kid or alg from Jwt", alg);
    // A token without kid is tried against every key.
    assert.equal((await run(f, bearer(await sign(s, claims, { kid: undefined })))).allowed, true, alg);
  }
});

test('key matching: kid and alg select candidates in order; keys Envoy rejects are skipped', async () => {
  const es = await signer('ES256', 'e');
  // The first key fails, the second verifies: candidates are tried in order.
  const f = single({ local_jwks: jwks({ ...rsOther.jwk, kid: 'a' }, { ...rs.jwk, kid: 'a' }) }, { provider_name: 'p' });
  assert.equal((await run(f, bearer(await sign(rs, { iss: 'iss' }, { kid: 'a' })))).allowed, true);
  // A key whose alg differs is no candidate.
  const g = single({ local_jwks: jwks({ ...rs.jwk, alg: 'RS384' }) }, { provider_name: 'p' });
  assert.equal((await run(g, bearer(await sign(rs, { iss: 'iss' })))).body, "Jwks doesn't have key to match kid or alg from Jwt");
  // Invalid keys (bad exponent, point not on the curve, unknown kty) are dropped; one valid key is enough.
  const badE = { ...rsOther.jwk, e: 'BQ', kid: 'rs-1' };
  const offCurve = { ...es.jwk, y: es.jwk.x };
  const h = single({ local_jwks: jwks(badE, offCurve, { kty: 'XX' }, rs.jwk) }, { provider_name: 'p' });
  assert.equal((await run(h, bearer(await sign(rs, { iss: 'iss' })))).allowed, true);
  assert.equal((await run(h, bearer(await sign(es, { iss: 'iss' })))).body, "Jwks doesn't have key to match kid or alg from Jwt");
  // No valid key at all, or no JSON: the set is not installed and every token fails.
  for (const local of [jwks(badE), { inline_string: 'nope' }, { inline_string: '{"keys": 1}' }, { inline_string: '' }]) {
    const n = single({ local_jwks: local }, { provider_name: 'p' });
    assert.equal((await run(n, bearer(await sign(rs, { iss: 'iss' })))).body, "Jwks doesn't have any valid public key");
  }
  // Ed25519: a signature of the wrong length stops the search.
  const ed = await signer('EdDSA', 'ed', { crv: 'Ed25519' });
  const t = await sign(ed, { iss: 'iss' });
  const short = t.slice(0, t.lastIndexOf('.') + 1) + Buffer.alloc(63).toString('base64url');
  assert.equal((await run(single({ local_jwks: jwks(ed.jwk) }, { provider_name: 'p' }), bearer(short))).body, 'Jwt ED25519 signature is wrong length');
});

test('malformed tokens fail with the first check Envoy makes', async () => {
  const f = single({}, { provider_name: 'p' });
  const b64 = (s: string): string => Buffer.from(s).toString('base64url');
  const cases: [string, string][] = [
    ['a.b', 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections'],
    ['a.b.c.d', 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections'],
    [`${b64('{"alg":"RS256"')}.e30.c2ln`, 'Jwt header is an invalid JSON'],
    [`${b64('[]')}.e30.c2ln`, 'Jwt header is an invalid JSON'],
    [`${b64('{"typ":"JWT"}')}.e30.c2ln`, 'Jwt header [alg] field is required and must be a string'],
    [`${b64('{"alg":"none"}')}.e30.c2ln`, 'Jwt header [alg] is not supported'],
    [`${b64('{"alg":"RS256","kid":1}')}.e30.c2ln`, 'Jwt header [kid] field is not a string'],
    [`${b64('{"alg":"RS256"}')}.e30==.c2ln`, 'Jwt payload is an invalid Base64url encoded'],
    [`${b64('{"alg":"RS256"}')}.e30ee.c2ln`, 'Jwt payload is an invalid Base64url encoded'],
    [`${b64('{"alg":"RS256"}')}.e3.c2ln`, 'Jwt payload is an invalid JSON'],
    [`${b64('{"alg":"RS256"}')}.${b64('{"a":1,"a":2}')}.c2ln`, 'Jwt payload is an invalid JSON'],
    [`${b64('{"alg":"RS256"}')}.${b64('{"iss":1}')}.c2ln`, 'Jwt payload [iss] field is not a string'],
    [`${b64('{"alg":"RS256"}')}.${b64('{"sub":null}')}.c2ln`, 'Jwt payload [sub] field is not a string'],
    [`${b64('{"alg":"RS256"}')}.${b64('{"iat":"1"}')}.c2ln`, 'Jwt payload [iat] field is not an integer'],
    [`${b64('{"alg":"RS256"}')}.${b64('{"nbf":-1}')}.c2ln`, 'Jwt payload [nbf] field is not a positive 64 bit integer'],
    [`${b64('{"alg":"RS256"}')}.${b64('{"exp":1e20}')}.c2ln`, 'Jwt payload [exp] field is not a positive 64 bit integer'],
    [`${b64('{"alg":"RS256"}')}.${b64('{"jti":[]}')}.c2ln`, 'Jwt payload [jti] field is not a string'],
    [`${b64('{"alg":"RS256"}')}.${b64('{"aud":["a",1]}')}.c2ln`, 'Jwt payload [aud] field is not a string or string list'],
    [`${b64('{"alg":"RS256"}')}.${b64('{"iss":"iss"}')}.c2l*`, 'Jwt signature is an invalid Base64url encoded'],
    // Lenient JSON (protobuf's legacy syntax) and lenient base64 are accepted: the signature decides.
    [`${b64("{alg:'RS256',}")}.${b64("{'iss':'iss',}")}=.c2ln`, 'Jwt verification fails'],
    // Empty sections are skipped: three non-empty ones remain.
    [`${b64('{"alg":"RS256"}')}..${b64('{"iss":"iss"}')}.c2ln`, 'Jwt verification fails'],
  ];
  for (const [token, body] of cases) assert.equal((await run(f, bearer(token))).body, body, token);
});

test('the payload is read as protobuf reads JSON into a Struct, not as JSON.parse would', async () => {
  const f = single({ payload_in_metadata: 'p' }, { provider_name: 'p' });
  const at = async (json: string) => {
    const res = await run(f, bearer(await signRaw(rs, json)));
    return res.allowed ? res.metadata.p : res.body;
  };
  assert.equal(await at('{"iss":"iss","a":1,"a":2}'), 'Jwt payload is an invalid JSON');
  assert.equal(await at('{"iss":"iss","o":{"b":1,"b":1}}'), 'Jwt payload is an invalid JSON');
  assert.deepEqual(await at("{'iss':'iss', bare_1: [1, 'x',], }"), { iss: 'iss', bare_1: [1, 'x'] });
  assert.deepEqual(await at('{"iss":"iss","s":"tab\there\u00e9\ud83d\ude00"}'), { iss: 'iss', s: 'tab\there\u00e9\u{1f600}' });
  assert.equal(await at('{"iss":"iss","n":01}'), 'Jwt payload is an invalid JSON');
  assert.equal(await at('{"iss":"iss","n":1.}'), 'Jwt payload is an invalid JSON');
  assert.equal(await at('{"iss":"iss","n":1e999}'), 'Jwt payload is an invalid JSON');
  assert.equal(await at('{"iss":"iss"} x'), 'Jwt payload is an invalid JSON');
  assert.equal(await at('[]'), 'Jwt payload is an invalid JSON');
  // null is an empty Struct: no iss, which this provider's location does not accept.
  assert.equal(await at('null'), 'Jwt issuer is not configured');
  const nest = (n: number): string => '{"iss":"iss","d":' + '['.repeat(n) + ']'.repeat(n) + '}';
  assert.deepEqual(await at(nest(99)), { iss: 'iss', d: JSON.parse('['.repeat(99) + ']'.repeat(99)) as unknown });
  assert.equal(await at(nest(100)), 'Jwt payload is an invalid JSON');
  assert.deepEqual(await at('{"iss":"iss","__proto__":{"x":1}}'), JSON.parse('{"iss":"iss","__proto__":{"x":1}}') as unknown);
});

test('time constraints: nbf and exp with 60 s of skew by default, clock_skew_seconds when set', async () => {
  const f = single({}, { provider_name: 'p' });
  const at = async (c: JWTPayload, g = f) => (await run(g, bearer(await sign(rs, { iss: 'iss', ...c })))).body ?? 'ok';
  assert.equal(await at({ exp: NOW - 60 }), 'ok');
  assert.equal(await at({ exp: NOW - 61 }), 'Jwt is expired');
  assert.equal(await at({ nbf: NOW + 60 }), 'ok');
  assert.equal(await at({ nbf: NOW + 61 }), 'Jwt not yet valid');
  assert.equal(await at({ nbf: NOW + 61, exp: NOW - 100 }), 'Jwt not yet valid');
  assert.equal(await at({ exp: 0 }), 'ok');
  const skew = single({ clock_skew_seconds: 5 }, { provider_name: 'p' });
  assert.equal(await at({ exp: NOW - 6 }, skew), 'Jwt is expired');
  assert.equal(await at({ exp: NOW - 5 }, skew), 'ok');
  // The time check comes before the audience check and the signature.
  const aud = single({ audiences: ['x'] }, { provider_name: 'p' });
  assert.equal(await at({ exp: NOW - 100, aud: 'y' }, aud), 'Jwt is expired');
  // require_expiration / max_lifetime.
  const life = single({ max_lifetime: '3600s' }, { provider_name: 'p' });
  assert.equal(await at({ exp: NOW + 3599 }, life), 'ok');
  assert.equal(await at({ exp: NOW + 3601 }, life), 'Jwt verification fails');
  assert.equal(await at({}, life), 'Jwt verification fails');
  assert.equal(await at({}, single({ require_expiration: true }, { provider_name: 'p' })), 'Jwt verification fails');
});

test('issuer and audiences: an empty list allows any audience; http(s):// and a trailing / are ignored', async () => {
  const at = async (p: Partial<JwtProvider>, c: JWTPayload, r?: JwtRequirement) =>
    (await run(single(p, r ?? { provider_name: 'p' }), bearer(await sign(rs, { iss: 'iss', ...c })))).status ?? 200;
  assert.equal(await at({}, { aud: 'anything' }), 200);
  assert.equal(await at({ audiences: ['https://svc.example/'] }, { aud: ['x', 'http://svc.example'] }), 200);
  assert.equal(await at({ audiences: ['svc'] }, { aud: 'svc2' }), 403);
  assert.equal(await at({}, { iss: 'someone-else' }), 401);
  // provider_and_audiences replaces the provider's audiences.
  assert.equal(await at({ audiences: ['a'] }, { aud: 'b' }, { provider_and_audiences: { provider_name: 'p', audiences: ['b'] } }), 200);
  assert.equal(await at({ audiences: ['b'] }, { aud: 'b' }, { provider_and_audiences: { provider_name: 'p', audiences: ['a'] } }), 403);
  // A provider without issuer accepts any.
  assert.equal(await at({ issuer: undefined }, { iss: 'whoever' }), 200);
  // subjects.
  assert.equal(await at({ subjects: { prefix: 'spiffe://td/' } }, { sub: 'spiffe://td/ns/a' }), 200);
  assert.equal(await at({ subjects: { prefix: 'spiffe://td/' } }, { sub: 'spiffe://other/' }), 401);
});

test('requirements: missing, any, all, allow_missing, allow_missing_or_failed, and which error wins', async () => {
  const a = await signer('RS256', 'a');
  const b = await signer('RS256', 'b');
  const providers: Record<string, JwtProvider> = {
    A: { issuer: 'A', local_jwks: jwks(a.jwk), from_headers: [{ name: 'a' }] },
    B: { issuer: 'B', local_jwks: jwks(b.jwk), from_headers: [{ name: 'b' }] },
  };
  const filter = (requires: JwtRequirement) => new JwtAuthnFilter({ providers, rules: [{ match: { prefix: '/' }, requires }] }, 'jwt', { now });
  const good = { a: await sign(a, { iss: 'A' }), b: await sign(b, { iss: 'B' }) };
  const expired = { a: await sign(a, { iss: 'A', exp: NOW - 100 }), b: await sign(b, { iss: 'B', exp: NOW - 100 }) };
  const badSig = { a: await sign(b, { iss: 'A' }, { kid: 'a' }), b: await sign(a, { iss: 'B' }, { kid: 'b' }) };
  const foreign = { a: await sign(b, { iss: 'B' }), b: await sign(a, { iss: 'A' }) };
  const any = { requires_any: { requirements: [{ provider_name: 'A' }, { provider_name: 'B' }] } };
  const all = { requires_all: { requirements: [{ provider_name: 'A' }, { provider_name: 'B' }] } };
  const cases: [string, JwtRequirement, string[], string][] = [
    ['provider, none', { provider_name: 'A' }, [], 'Jwt is missing'],
    ['provider, good', { provider_name: 'A' }, ['a', good.a], 'ok'],
    ['provider, two good tokens', { provider_name: 'A' }, ['a', good.a, 'a', good.a], 'ok'],
    ['provider, good and bad: all must be valid', { provider_name: 'A' }, ['a', good.a, 'a', badSig.a], 'Jwt verification fails'],
    ['any, none', any, [], 'Jwt is missing'],
    ['any, B good', any, ['b', good.b], 'ok'],
    ['any, A expired, B missing: the real error', any, ['a', expired.a], 'Jwt is expired'],
    ['any, A foreign, B missing: unknown issuer over missing', any, ['a', foreign.a], 'Jwt issuer is not configured'],
    ['any, A expired, B bad signature: the last real error', any, ['a', expired.a, 'b', badSig.b], 'Jwt verification fails'],
    ['any, A bad signature, B expired: the last real error', any, ['a', badSig.a, 'b', expired.b], 'Jwt is expired'],
    ['any, A expired, B foreign: the real error', any, ['a', expired.a, 'b', foreign.b], 'Jwt is expired'],
    ['all, both good', all, ['a', good.a, 'b', good.b], 'ok'],
    ['all, B missing', all, ['a', good.a], 'Jwt is missing'],
    ['all, A expired, B bad: the first failure', all, ['a', expired.a, 'b', badSig.b], 'Jwt is expired'],
    ['any with allow_missing, none', { requires_any: { requirements: [{ provider_name: 'A' }, { allow_missing: {} }] } }, [], 'ok'],
    [
      'any with allow_missing, bad',
      { requires_any: { requirements: [{ provider_name: 'A' }, { allow_missing: {} }] } },
      ['a', badSig.a],
      'Jwt verification fails',
    ],
    [
      'any with allow_missing, foreign',
      { requires_any: { requirements: [{ provider_name: 'A' }, { allow_missing: {} }] } },
      ['a', foreign.a],
      'Jwt issuer is not configured',
    ],
    [
      'any with allow_missing_or_failed, bad',
      { requires_any: { requirements: [{ provider_name: 'A' }, { allow_missing_or_failed: {} }] } },
      ['a', badSig.a],
      'ok',
    ],
    ['allow_missing, none', { allow_missing: {} }, [], 'ok'],
    ['allow_missing, bad', { allow_missing: {} }, ['b', badSig.b], 'Jwt verification fails'],
    ['allow_missing, each token with the provider of its iss', { allow_missing: {} }, ['a', good.a, 'b', good.b], 'ok'],
    ['allow_missing, a token at the other provider location', { allow_missing: {} }, ['a', foreign.a], 'Jwt issuer is not configured'],
    // Every token is tried and the last one's status counts (tokens go from the last found to the first).
    ['allow_missing, bad then good', { allow_missing: {} }, ['a', good.a, 'b', badSig.b], 'ok'],
    ['allow_missing, good then bad', { allow_missing: {} }, ['a', badSig.a, 'b', good.b], 'Jwt verification fails'],
    ['allow_missing_or_failed, bad', { allow_missing_or_failed: {} }, ['a', badSig.a], 'ok'],
    ['only allow_missing entries', { requires_any: { requirements: [{ allow_missing: {} }, { allow_missing: {} }] } }, ['a', expired.a], 'Jwt is expired'],
    ['empty requirement', {}, ['a', badSig.a], 'ok'],
  ];
  for (const [name, requires, headers, want] of cases) {
    const res = await run(filter(requires), req({ headers: [...headers] }));
    assert.equal(res.allowed ? 'ok' : res.body, want, name);
  }
});

test('side effects happen as tokens are verified: a removed token is missing for a later requirement', async () => {
  // any[ all[A, B], A ]: A's token is verified (and removed) inside the failing all, so the second A misses it.
  const a = await signer('RS256', 'a');
  const providers: Record<string, JwtProvider> = {
    A: { issuer: 'A', local_jwks: jwks(a.jwk), from_headers: [{ name: 'a' }], payload_in_metadata: 'pa' },
    B: { issuer: 'B', local_jwks: jwks(a.jwk), from_headers: [{ name: 'b' }] },
  };
  const requires = {
    requires_any: { requirements: [{ requires_all: { requirements: [{ provider_name: 'A' }, { provider_name: 'B' }] } }, { provider_name: 'A' }] },
  };
  const f = new JwtAuthnFilter({ providers, rules: [{ match: { prefix: '/' }, requires }] }, 'jwt', { now });
  const res = await run(f, req({ headers: ['a', await sign(a, { iss: 'A' })] }));
  assert.equal(res.body, 'Jwt is missing');
  // Metadata of the verified token is kept although the request is denied.
  assert.deepEqual(res.metadata, { pa: { iss: 'A' } });
});

test('token locations: prefixes, several values, defaults, cookies, parameters', async () => {
  const t = await sign(rs, { iss: 'iss' });
  const at = async (p: Partial<JwtProvider>, r: JwtRequest) => {
    const res = await run(single(p, { provider_name: 'p' }), r);
    return res.allowed ? 'ok' : (res.body as string);
  };
  // Default locations: Authorization "Bearer " (case-sensitive, anywhere in the value), then access_token.
  assert.equal(await at({}, req({ headers: ['authorization', `bearer ${t}`] })), 'Jwt is missing');
  assert.equal(await at({}, req({ headers: ['authorization', `Basic x, Bearer ${t}`] })), 'ok');
  assert.equal(await at({}, req({ headers: ['authorization', `Bearer   ${t}`] })), 'ok');
  assert.equal(await at({}, req({ path: `/?access_token=${t}` })), 'ok');
  assert.equal(await at({}, req({ path: `/?x=${t}` })), 'Jwt is missing');
  // Explicit locations replace the defaults.
  assert.equal(await at({ from_params: ['jwt'] }, req({ headers: ['authorization', `Bearer ${t}`] })), 'Jwt is missing');
  assert.equal(await at({ from_params: ['jwt'] }, req({ path: `/a?jwt=${t}&jwt=garbage` })), 'ok');
  // No value_prefix: the whole value.
  assert.equal(await at({ from_headers: [{ name: 'X-Token' }] }, req({ headers: ['x-token', t] })), 'ok');
  // ("Bearer eyJ..." is read as base64 with the space skipped: it decodes, to bytes that are no JSON.)
  assert.equal(await at({ from_headers: [{ name: 'x-token' }] }, req({ headers: ['x-token', `Bearer ${t}`] })), 'Jwt header is an invalid JSON');
  // Every value of a header is a token: all must be valid.
  assert.equal(await at({ from_headers: [{ name: 'x-token' }] }, req({ headers: ['x-token', t, 'x-token', t] })), 'ok');
  assert.equal(
    await at({ from_headers: [{ name: 'x-token' }] }, req({ headers: ['x-token', t, 'x-token', 'a.b.c'] })),
    'Jwt header is an invalid Base64url encoded',
  );
  // Two Authorization headers are one value joined with ',' (an inline header in Envoy).
  assert.equal(
    await at({}, req({ headers: ['authorization', `Bearer ${t}`, 'authorization', `Bearer ${t}`] })),
    'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  );
  // The same token in two places is two tokens; with forward false both places are cleaned.
  const r = req({ path: `/x?access_token=${t}`, headers: ['authorization', `Bearer ${t}`] });
  assert.equal(await at({}, r), 'ok');
  assert.deepEqual(r.headers, []);
  assert.equal(r.path, '/x');
  // Cookies: the first of that name, quotes removed; a cookie stays in the request even with forward false.
  const c = req({ headers: ['cookie', `a=1;  jwt="${t}"; jwt=garbage`] });
  assert.equal(await at({ from_cookies: ['jwt'] }, c), 'ok');
  assert.equal(c.headers.length, 2);
  assert.equal(await at({ from_cookies: ['jwt'] }, req({ headers: ['cookie', `jwt =${t}`] })), 'Jwt is missing');
});

test('claim_to_headers renders strings, numbers, booleans and structures as Envoy does', async () => {
  const s = await signer('HS256', 'h');
  const claims = {
    iss: 'iss',
    str: 'v',
    empty: '',
    int: 42,
    neg: -3,
    frac: 1.5,
    tiny: 0.0078125,
    u64: 1e19,
    big: 1e20,
    t: true,
    f: false,
    nul: null,
    obj: { a: { b: 'deep' }, x: [1, 'y'] },
    list: ['a', 'b<'],
  };
  const map: [string, string | undefined][] = [
    ['str', 'v'],
    ['empty', undefined],
    ['int', '42'],
    ['neg', '-3.000000'],
    ['frac', '1.500000'],
    ['tiny', '0.007812'],
    ['u64', '10000000000000000000'],
    ['big', '100000000000000000000.000000'],
    ['t', 'true'],
    ['f', 'false'],
    ['nul', undefined],
    ['missing', undefined],
    ['obj.a.b', 'deep'],
    ['obj.x.0', undefined],
    ['obj', Buffer.from('{"a":{"b":"deep"},"x":[1,"y"]}').toString('base64')],
    ['list', Buffer.from('["a","b\\u003c"]').toString('base64')],
  ];
  const f = single({ local_jwks: jwks(s.jwk), claim_to_headers: map.map(([c]) => ({ header_name: `X-${c}`, claim_name: c })) }, { provider_name: 'p' });
  const r = bearer(await sign(s, claims));
  assert.equal((await run(f, r)).allowed, true);
  for (const [c, want] of map) assert.deepEqual(headerValues(r, `x-${c}`.toLowerCase()), want === undefined ? [] : [want], c);
  assert.equal(claimNumberString(1e300).slice(0, 10), '1000000000');
  assert.equal(claimNumberString(-0), '0');
});

test('forward_payload_header, padding, header_in_metadata, failed_status_in_metadata, clear_route_cache', async () => {
  const t = await sign(rs, { iss: 'iss', s: 'ab' });
  const payload = t.split('.')[1] as string;
  const f = single(
    {
      forward: true,
      forward_payload_header: 'X-Payload',
      pad_forward_payload_header: true,
      header_in_metadata: 'hdr',
      failed_status_in_metadata: 'failed',
      clear_route_cache: true,
    },
    { provider_name: 'p' },
  );
  const r = bearer(t);
  const res = await run(f, r);
  assert.equal(res.allowed, true);
  assert.deepEqual(headerValues(r, 'x-payload'), [payload + '='.repeat((4 - (payload.length % 4)) % 4)]);
  assert.deepEqual(headerValues(r, 'authorization'), [`Bearer ${t}`]);
  assert.deepEqual(res.metadata, { hdr: { alg: 'RS256', kid: 'rs-1' } });
  assert.equal(res.clearRouteCache, false); // no claim header added, no payload metadata
  const bad = await run(f, bearer('a.b'));
  assert.deepEqual(bad.metadata, { failed: { code: 4, message: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections' } });
  // A missing token is recorded too (Envoy falls back to the only provider).
  assert.deepEqual((await run(f, req())).metadata, { failed: { code: 1, message: 'Jwt is missing' } });
});

test('normalize_payload_in_metadata: listed top-level string claims become lists of their space-separated words', async () => {
  const f = single(
    { payload_in_metadata: 'p', normalize_payload_in_metadata: { space_delimited_claims: ['scope', 'scope', 'blank', 'list', 'nested.x', 'absent'] } },
    { provider_name: 'p' },
  );
  const claims = { iss: 'iss', scope: ' a  b ', blank: '   ', list: ['c d'], nested: { x: 'e f' } };
  const res = await run(f, bearer(await sign(rs, claims)));
  // A claim listed twice is appended twice, as Envoy does.
  assert.deepEqual(res.metadata, { p: { ...claims, scope: ['a', 'b', 'a', 'b'] } });
});

test('rules: the first matching rule decides; no match, or a rule without requirement, passes', async () => {
  const f = new JwtAuthnFilter(
    {
      providers: { p: { issuer: 'iss', local_jwks: jwks(rs.jwk) } },
      rules: [
        { match: { prefix: '/healthz' } },
        { match: { path: '/exact', case_sensitive: false }, requires: { provider_name: 'p' } },
        { match: { safe_regex: { regex: '/re/[0-9]+' } }, requires: { provider_name: 'p' } },
        { match: { path_separated_prefix: '/api' }, requires: { provider_name: 'p' } },
        { match: { prefix: '/h', headers: [{ name: 'x-auth', exact_match: 'yes' }] }, requires: { provider_name: 'p' } },
        { match: { prefix: '/q', query_parameters: [{ name: 'a', string_match: { exact: '1' } }] }, requires: { provider_name: 'p' } },
        { match: { connect_matcher: {} }, requires: { provider_name: 'p' } },
      ],
    },
    'jwt',
    { now },
  );
  const cases: [JwtRequest, boolean][] = [
    [req({ path: '/healthz/x' }), true],
    [req({ path: '/EXACT?x' }), false],
    [req({ path: '/exact/' }), true],
    [req({ path: '/re/12?q' }), false],
    [req({ path: '/re/1a' }), true],
    [req({ path: '/api' }), false],
    [req({ path: '/api/v1' }), false],
    [req({ path: '/apis' }), true],
    [req({ path: '/h', headers: ['x-auth', 'yes'] }), false],
    [req({ path: '/h' }), true],
    [req({ path: '/q?a=1' }), false],
    [req({ path: '/q?a=2' }), true],
    [req({ method: 'CONNECT', path: '' }), false],
    [req({ path: '/other' }), true],
  ];
  for (const [r, want] of cases) assert.equal((await run(f, r)).allowed, want, `${r.method} ${r.path}`);
});

test('per-route config, requirement_map and strip_failure_response', async () => {
  const f = single({}, undefined, { requirement_map: { strict: { provider_name: 'p' }, lax: { allow_missing: {} } } });
  assert.equal((await f.authenticate(req(), 'https', 'h', parseJwtPerRoute({ requirement_name: 'strict' }, 'r'))).body, 'Jwt is missing');
  assert.equal((await f.authenticate(bearer('x'), 'https', 'h', parseJwtPerRoute({ disabled: true }, 'r'))).allowed, true);
  const wrong = await f.authenticate(req(), 'https', 'h', parseJwtPerRoute({ requirement_name: 'nope' }, 'r'));
  assert.deepEqual(wrong, {
    allowed: false,
    status: 403,
    body: 'Failed JWT authentication: Wrong requirement_name: nope. It should be one of [lax,strict]',
    details: 'jwt_authn_access_denied{Wrong_requirement_name:_nope._It_should_be_one_of_[lax,strict]}',
    metadata: {},
    clearRouteCache: false,
  });
  const strip = single({}, { provider_name: 'p' }, { strip_failure_response: true });
  const res = await strip.authenticate(req({ path: '/a?b' }), 'https', 'h');
  assert.deepEqual([res.status, res.body, res.wwwAuthenticate, res.details], [401, '', undefined, 'jwt_authn_access_denied{Jwt_is_missing}']);
  // The realm is scheme://authority/path (up to 256 characters of it, x-envoy-original-path when present).
  const long = '/' + 'a'.repeat(300);
  const realm = (await single({}, { provider_name: 'p' }).authenticate(req({ path: long }), 'https', 'h')).wwwAuthenticate;
  assert.equal(realm, `Bearer realm="https://h${long.slice(0, 256)}"`);
  const orig = (await single({}, { provider_name: 'p' }).authenticate(req({ path: '/new', headers: ['x-envoy-original-path', '/old'] }), 'https', 'h'))
    .wwwAuthenticate;
  assert.equal(orig, 'Bearer realm="https://h/old"');
});

test('verified tokens are cached per provider, and still expire', async () => {
  let t = NOW;
  const f = new JwtAuthnFilter(
    { providers: { p: { issuer: 'iss', local_jwks: jwks(rs.jwk) } }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }] },
    'jwt',
    {
      now: () => t * 1000,
    },
  );
  const tok = await sign(rs, { iss: 'iss', exp: NOW + 10 });
  assert.equal((await run(f, bearer(tok))).allowed, true);
  assert.equal((await run(f, bearer(tok))).allowed, true);
  t = NOW + 71;
  assert.equal((await run(f, bearer(tok))).body, 'Jwt is expired');
});

test('config errors name the field', () => {
  const base = istiodConfig(rs.jwk, k1.jwk);
  const bad: [unknown, RegExp][] = [
    [{ ...base, nope: 1 }, /^jwt: field 'nope' is not supported/],
    [{ providers: { p: { issuer: 'i', local_jwks: jwks(rs.jwk), bogus: true } } }, /^jwt\.providers\["p"\]: field 'bogus'/],
    [
      { providers: { p: { remote_jwks: { http_uri: { uri: 'https://x', cluster: 'c', timeout: '1s' } } } } },
      /^jwt\.providers\["p"\]\.remote_jwks: remote JWKS are not supported/,
    ],
    [{ providers: { p: { issuer: 'i' } } }, /one of local_jwks, remote_jwks is required/],
    [{ providers: { p: { local_jwks: { filename: '/x' } } } }, /local_jwks\.filename/],
    [
      { providers: {}, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'x' } }] },
      /^jwt\.rules\[0\]\.requires\.provider_name: Required provider \['x'\] is not configured\.$/,
    ],
    [{ providers: {}, rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{}] } } }] }, /requires_any\.requirements: at least 2/],
    [{ providers: {}, rules: [{ requires: {} }] }, /rules\[0\]\.match: is required/],
    [{ providers: {}, rules: [{ match: { prefix: '/', grpc: {} }, requirement_name: 'x' }] }, /Wrong requirement_name: x/],
    [{ providers: {}, rules: [{ match: { prefix: '/', path: '/' } }] }, /exactly one of prefix/],
    [{ providers: { p: { local_jwks: jwks(), from_headers: [{ name: '' }] } } }, /from_headers\[0\]\.name: must not be empty/],
    [{ providers: { p: { local_jwks: jwks(), claim_to_headers: [{ header_name: 'x', claim_name: '' }] } } }, /claim_name: must not be empty/],
    [
      { providers: {}, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'a', allow_missing: {} } }] },
      /sets both 'provider_name' and 'allow_missing'/,
    ],
  ];
  for (const [cfg, re] of bad)
    assert.throws(
      () => parseJwtAuthn(cfg as JwtAuthentication, 'jwt'),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
      String(re),
    );
  assert.throws(() => parseJwtPerRoute({}, 'r'), ConfigError);
  assert.throws(() => parseJwtPerRoute({ disabled: false }, 'r'), ConfigError);
});
