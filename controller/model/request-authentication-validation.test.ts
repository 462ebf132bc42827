// RequestAuthentication decoding and validation: istiod's webhook messages and the fields they are about, and the
// three Go parsers the validation leans on, checked against vectors recorded from Go itself (jwk.Parse of
// lestrrat-go/jwx v1.2.31, net/url.Parse and time.ParseDuration of Go 1.26; '' means accepted). The istiod
// differential checks acceptance on every golden input too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGoDuration, validateRequestAuthentication } from './request-authentication-validation.ts';
import { jwksParseError } from './jwks-parse.ts';
import { parseGoUrl, parseJwksUri } from './go-url.ts';

const JWKS: [string, string][] = [
  ['', 'failed to unmarshal JWK set: EOF'],
  [' ', 'failed to unmarshal JWK set: EOF'],
  ['null', 'failed to unmarshal JWK set: error reading token: EOF'],
  ['"abc"', 'failed to unmarshal JWK set: failed to decode value for key "abc": EOF'],
  ['"keys"', 'failed to unmarshal JWK set: failed to decode "keys": EOF'],
  ['5', 'failed to unmarshal JWK set: error reading token: EOF'],
  ['[]', "failed to unmarshal JWK set: expected '{', but got '['"],
  ['{}', 'failed to unmarshal JWK set: failed to parse sole key in key set: invalid key type from JSON ()'],
  ['{"keys":null}', ''],
  ['{"keys":[]}', ''],
  ['{"keys":{}}', 'failed to unmarshal JWK set: failed to decode "keys": json: cannot unmarshal object into Go value of type []json.RawMessage'],
  ['{"kty":"RSA","n":"AQAB","e":"AQAB"}', ''],
  ['{"keys":[null]}', 'failed to unmarshal JWK set: failed to decode key #0 in "keys": invalid key type from JSON ()'],
  [
    '{"keys":[5]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key hint: json: cannot unmarshal number into Go value of type struct { Kty string "json:\\"kty\\""; D json.RawMessage "json:\\"d\\"" }',
  ],
  [
    '{"keys":[{"kty":5}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key hint: json: cannot unmarshal number into Go struct field .kty of type string',
  ],
  ['{"keys":[{"KTY":"RSA","n":"AQAB","e":"AQAB"}]}', ''],
  [
    '{"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.rsaPublicKey): failed to decode value for key n: expected base64 encoded []byte (string)',
  ],
  [
    '{"keys":[{"kty":"EC"}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.ecdsaPublicKey): required field crv is missing',
  ],
  ['{"keys":[{"kty":"EC","crv":"nope","x":"AQ","y":"AQ"}]}', ''],
  [
    '{"keys":[{"kty":"EC","crv":5,"x":"AQ","y":"AQ"}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.ecdsaPublicKey): failed to decode value for key crv: json: cannot unmarshal number into Go value of type jwa.EllipticCurveAlgorithm',
  ],
  [
    '{"keys":[{"kty":"oct"}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.symmetricKey): required field k is missing',
  ],
  ['{"keys":[{"kty":"oct","k":"AQ"}]}', ''],
  [
    '{"keys":[{"kty":"OKP","crv":"Ed25519"}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.okpPublicKey): required field x is missing',
  ],
  [
    '{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":5}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.rsaPublicKey): failed to decode value for key kid: error reading next value: json: cannot unmarshal number into Go value of type string',
  ],
  ['{"keys":[{"kty":"RSA","n":null,"e":null}]}', ''],
  ['{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","key_ops":["bogus"]}]}', ''],
  [
    '{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","key_ops":"sign"}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.rsaPublicKey): failed to decode value for key key_ops: json: cannot unmarshal string into Go value of type jwk.KeyOperationList',
  ],
  [
    '{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","key_ops":[1]}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.rsaPublicKey): failed to decode value for key key_ops: json: cannot unmarshal number into Go value of type jwk.KeyOperation',
  ],
  [
    '{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","x5c":["AQAB"]}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.rsaPublicKey): failed to decode value for key x5c: failed to parse certificate: x509: malformed certificate',
  ],
  [
    '{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","x5c":["A"]}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.rsaPublicKey): failed to decode value for key x5c: failed to base64 decode list element: failed to decode source: illegal base64 data at input byte 0',
  ],
  [
    '{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","x5c":"AQAB"}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.rsaPublicKey): failed to decode value for key x5c: failed to unmarshal JSON into []string: json: cannot unmarshal string into Go value of type []string',
  ],
  ['{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":null}]}', ''],
  [
    '{"keys":[{"kty":"RSA","n":"AQAB","D":"AQ"}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.rsaPrivateKey): required field d is missing',
  ],
  [
    '{"keys":[{"kty":"RSA","n":"AQ+/","e":"AQAB="}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.rsaPublicKey): failed to decode value for key e: expected base64 encoded []byte (string)',
  ],
  ['{"keys":[{"kty":"RSA","n":"AQ\\nAB","e":"AQ=="}]}', ''],
  [
    '{"keys":[{"kty":"RSA","n":"A","e":"AQAB"}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.rsaPublicKey): failed to decode value for key n: expected base64 encoded []byte (string)',
  ],
  ['{"a":1}', 'failed to unmarshal JWK set: failed to parse sole key in key set: invalid key type from JSON ()'],
  ['{"keys":[]} x', ''],
  ['{"keys":[],}', "failed to unmarshal JWK set: invalid character '}' looking for beginning of object key string"],
  [
    '{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kty":"EC"}]}',
    'failed to unmarshal JWK set: failed to decode key #0 in "keys": failed to unmarshal JSON into key (*jwk.ecdsaPublicKey): invalid kty value for RSAPublicKey (RSA)',
  ],
  ['{"keys":[]', 'failed to unmarshal JWK set: unexpected EOF'],
  ['{"keys":[1.]}', "failed to unmarshal JWK set: invalid character ']' after decimal point in numeric literal"],
  ['{"keys":[-x]}', "failed to unmarshal JWK set: invalid character 'x' in numeric literal"],
  ['{"keys":[1e+]}', "failed to unmarshal JWK set: invalid character ']' in exponent of numeric literal"],
  ['{"keys":[tru]}', "failed to unmarshal JWK set: invalid character ']' in literal true (expecting 'e')"],
  ['{"keys":["\\x"]}', "failed to unmarshal JWK set: invalid character 'x' in string escape code"],
  ['{"keys":["\\u12g4"]}', "failed to unmarshal JWK set: invalid character 'g' in \\u hexadecimal character escape"],
  ['{"keys":["a\tb"]}', "failed to unmarshal JWK set: invalid character '\\t' in string literal"],
  ['{"keys" 1}', "failed to unmarshal JWK set: invalid character '1' after object key"],
  ['{"keys":[] "x"}', "failed to unmarshal JWK set: invalid character '\"' after object key:value pair"],
  ['[1 2]', "failed to unmarshal JWK set: invalid character '2' after array element"],
  ['é', "failed to unmarshal JWK set: invalid character 'Ã' looking for beginning of value"],
  ["'", "failed to unmarshal JWK set: invalid character '\\'' looking for beginning of value"],
  [
    '{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}],"keys":5}',
    'failed to unmarshal JWK set: failed to decode "keys": json: cannot unmarshal number into Go value of type []json.RawMessage',
  ],
];
const URLS: [string, string][] = [
  ['https://example.com/jwks', ''],
  ['HTTPS://Example.com:8443/a?b#c', ''],
  ['ftp://x/y', ''],
  ['https://', ''],
  ['https:foo', ''],
  ['example.com/jwks', ''],
  ['//example.com/jwks', ''],
  ['http://a:b:80/', 'parse "http://a:b:80/": invalid port ":b:80" after host'],
  ['http://[::1', 'parse "http://[::1": missing \']\' in host'],
  ['http://[::1]:8080/x', ''],
  ['http://[1.2.3.4]/', 'parse "http://[1.2.3.4]/": invalid IP-literal'],
  ['http://[fe80::1%25en0]:80/', ''],
  ['http://[zz]/', 'parse "http://[zz]/": invalid host: ParseAddr("zz"): unable to parse IP'],
  ['http://x:99999999999999999999/', ''],
  ['http://u ser@x/', 'parse "http://u ser@x/": net/url: invalid userinfo'],
  ['http://u:p@x/', ''],
  ['http://x/%zz', 'parse "http://x/%zz": invalid URL escape "%zz"'],
  ['http://x/#%zz', 'parse "http://x/#%zz": invalid URL escape "%zz"'],
  ['http://%41/', 'parse "http://%41/": invalid URL escape "%41"'],
  ['http://%c3%a9/', ''],
  ['http://a b/', 'parse "http://a b/": invalid character " " in host name'],
  ['http://a^b/', 'parse "http://a^b/": invalid character "^" in host name'],
  [':x', 'parse ":x": missing protocol scheme'],
  ['1http://x', 'parse "1http://x": first path segment in URL cannot contain colon'],
  ['http://x/\u0007', 'parse "http://x/\\a": net/url: invalid control character in URL'],
  ['http://x:8a/', 'parse "http://x:8a/": invalid port ":8a" after host'],
  ['http://x]/', ''],
  ['http://a[b]/', 'parse "http://a[b]/": invalid IP-literal'],
];
const DURATIONS: [string, string][] = [
  ['0', ''],
  ['-0', ''],
  ['5s', ''],
  ['1.5s', ''],
  ['500ms', ''],
  ['1m', ''],
  ['1h30m', ''],
  ['5', 'time: missing unit in duration "5"'],
  ['', 'time: invalid duration ""'],
  ['.s', 'time: invalid duration ".s"'],
  ['1x', 'time: unknown unit "x" in duration "1x"'],
  ['1.0001s', ''],
  ['-5s', ''],
  ['9223372036854775807ns', ''],
  ['9223372036854775808ns', 'time: invalid duration "9223372036854775808ns"'],
  ['2562048h', 'time: invalid duration "2562048h"'],
  ['1µs', ''],
  ['µs', 'time: invalid duration "\\xc2\\xb5s"'],
  ['3 s', 'time: unknown unit " s" in duration "3 s"'],
];

test('jwks: what jwk.Parse takes and its messages', () => {
  for (const [jwks, want] of JWKS) assert.equal(jwksParseError(jwks) ?? '', want, jwks);
});

test('url: what net/url.Parse takes and its messages', () => {
  for (const [url, want] of URLS) {
    const got = parseGoUrl(url);
    assert.equal(got.ok ? '' : got.error, want, url);
  }
});

test('durations: time.ParseDuration', () => {
  for (const [d, want] of DURATIONS) {
    const got = parseGoDuration(d);
    assert.equal('error' in got ? got.error : '', want, d);
  }
  assert.deepEqual(parseGoDuration('1h30m'), { ns: 5_400_000_000_000n });
  assert.deepEqual(parseGoDuration('-1.5s'), { ns: -1_500_000_000n });
});

test('jwksUri: http or https, the port of the scheme unless given', () => {
  assert.deepEqual(parseJwksUri('https://example.com/jwks'), { ok: true, info: { scheme: 'https', hostname: 'example.com', port: 443 } });
  assert.deepEqual(parseJwksUri('HTTP://[::1]:8080/x'), { ok: true, info: { scheme: 'http', hostname: '::1', port: 8080 } });
  assert.deepEqual(parseJwksUri('ftp://x'), { ok: false, error: 'URI scheme "ftp" is not supported' });
  assert.deepEqual(parseJwksUri('example.com'), { ok: false, error: 'URI scheme "" is not supported' });
  assert.deepEqual(parseJwksUri('http://x:99999999999999999999/'), { ok: false, error: 'strconv.Atoi: parsing "99999999999999999999": value out of range' });
});

const meta = (annotations: Record<string, string> = {}) => ({ name: 'ra', namespace: 'ns', annotations });

const cases: { name: string; spec: unknown; annotations?: Record<string, string>; errors?: [field: string, message: RegExp][] }[] = [
  { name: 'no spec', spec: undefined },
  { name: 'no rules', spec: { selector: { matchLabels: { istio: 'ingressgateway' } } } },
  {
    name: 'every field',
    spec: {
      jwtRules: [
        {
          issuer: 'i',
          audiences: ['a'],
          jwksUri: 'https://x/j',
          jwks: '{"keys":[]}',
          fromHeaders: [{ name: 'x-jwt', prefix: 'Bearer ' }],
          fromParams: ['t'],
          fromCookies: ['c'],
          outputPayloadToHeader: 'x-payload',
          forwardOriginalToken: true,
          outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
          timeout: '1.5s',
          spaceDelimitedClaims: ['roles'],
        },
      ],
    },
  },
  { name: 'a jwksUri without issuer', spec: { jwtRules: [{ jwksUri: 'http://x/j' }] } },
  { name: 'unknown fields are ignored', spec: { jwtRules: [{ issuer: 'i', jwksURI: 5 }], extra: true } },
  { name: 'an empty rule', spec: { jwtRules: [{}] }, errors: [['spec.jwtRules[0]', /^issuer or jwksUri must be non-empty string$/]] },
  { name: 'a null rule is an empty one', spec: { jwtRules: [null] }, errors: [['spec.jwtRules[0]', /issuer or jwksUri/]] },
  { name: 'rules that are not a list', spec: { jwtRules: { issuer: 'i' } }, errors: [['spec.jwtRules', /must be a list/]] },
  { name: 'a number for a string', spec: { jwtRules: [{ issuer: 5 }] }, errors: [['spec.jwtRules[0].issuer', /must be a string/]] },
  {
    name: 'a string for a boolean',
    spec: { jwtRules: [{ issuer: 'i', forwardOriginalToken: 'true' }] },
    errors: [['spec.jwtRules[0].forwardOriginalToken', /must be a boolean/]],
  },
  {
    name: 'a timeout without unit',
    spec: { jwtRules: [{ issuer: 'i', timeout: '5' }] },
    errors: [['spec.jwtRules[0].timeout', /^bad Duration: time: missing unit in duration "5"$/]],
  },
  {
    name: 'a timeout under 1ms',
    spec: { jwtRules: [{ issuer: 'i', timeout: '-5s' }] },
    errors: [['spec.jwtRules[0].timeout', /^duration must be greater than 1ms$/]],
  },
  {
    name: 'a timeout below ms precision',
    spec: { jwtRules: [{ issuer: 'i', timeout: '1.0001s' }] },
    errors: [['spec.jwtRules[0].timeout', /^only durations to ms precision/]],
  },
  {
    name: 'every rule check, in istiod order',
    spec: {
      jwtRules: [
        {
          audiences: ['ok', ''],
          jwksUri: 'ftp://x/y',
          jwks: 'notjson',
          fromHeaders: [{ name: '' }, null],
          fromParams: [''],
          fromCookies: [null],
          outputClaimToHeaders: [
            { header: 'x y', claim: 'sub' },
            { header: '', claim: 'a' },
          ],
        },
      ],
    },
    errors: [
      ['spec.jwtRules[0].audiences[1]', /^audience must be non-empty string$/],
      ['spec.jwtRules[0].jwksUri', /^URI scheme "ftp" is not supported$/],
      ['spec.jwtRules[0].jwks', /^jwks parse error: failed to unmarshal JWK set: invalid character 'o' in literal null \(expecting 'u'\)$/],
      ['spec.jwtRules[0].fromHeaders[0].name', /^location header name must be non-empty string$/],
      ['spec.jwtRules[0].fromHeaders[1].name', /^location header name must be non-empty string$/],
      ['spec.jwtRules[0].fromParams[0]', /^location query must be non-empty string$/],
      ['spec.jwtRules[0].fromCookies[0]', /^cookie name must be non-empty string$/],
      ['spec.jwtRules[0].outputClaimToHeaders[0].header', /^header name x y is not a valid header name$/],
      ['spec.jwtRules[0].outputClaimToHeaders[1]', /^outputClaimToHeaders header and claim value must be non-empty string$/],
    ],
  },
  {
    name: 'selector and targetRef',
    spec: { selector: { matchLabels: { a: '*' } }, targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'g', namespace: 'x' } },
    errors: [
      ['spec', /^only one of targetRefs or workloadSelector can be set$/],
      ['spec.selector.matchLabels.a', /^wildcard is not supported in selector: "a=\*"$/],
      ['spec.targetRef.namespace', /cross namespace referencing is not supported/],
    ],
  },
  {
    name: 'the dry-run annotation',
    spec: { jwtRules: [{ issuer: 'i' }] },
    annotations: { 'istio.io/dry-run': 'true' },
    errors: [['metadata.annotations[istio.io/dry-run]', /^ns\/ra has unsupported annotation istio.io\/dry-run, please remove the annotation$/]],
  },
  {
    name: 'an internal annotation',
    spec: { jwtRules: [{ issuer: 'i' }] },
    annotations: { 'internal.istio.io/parents': 'x' },
    errors: [['metadata.annotations[internal.istio.io/parents]', /this may not be set by users/]],
  },
];

for (const c of cases) {
  test(`validation: ${c.name}`, () => {
    const { errors } = validateRequestAuthentication(meta(c.annotations), c.spec);
    assert.deepEqual(
      errors.map((e) => e.field),
      (c.errors ?? []).map(([f]) => f),
      JSON.stringify(errors),
    );
    errors.forEach((e, i) => assert.match(e.message, c.errors?.[i]?.[1] ?? /^$/));
  });
}

test('decoding: what was read is typed, a refusal says whether the spec could be read at all', () => {
  const ok = validateRequestAuthentication(meta(), { jwtRules: [{ issuer: 'i', fromHeaders: [null], fromParams: [null] }] });
  assert.deepEqual(ok.spec, { jwtRules: [{ issuer: 'i', fromHeaders: [{}], fromParams: [''] }] });
  assert.equal(ok.decoded, true);
  assert.equal(validateRequestAuthentication(meta(), { jwtRules: 'x' }).decoded, false);
});

test('decoding: fields by their proto names, as istiod reads them; the JSON name wins', () => {
  const { spec, errors } = validateRequestAuthentication(meta(), {
    selector: { match_labels: { app: 'a' } },
    jwt_rules: [
      {
        issuer: 'i',
        jwks_uri: 'http://snake',
        jwksUri: 'http://camel',
        from_headers: [{ name: 'h' }],
        forward_original_token: true,
        space_delimited_claims: ['r'],
      },
    ],
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(spec, {
    selector: { matchLabels: { app: 'a' } },
    jwtRules: [{ issuer: 'i', jwksUri: 'http://camel', spaceDelimitedClaims: ['r'], fromHeaders: [{ name: 'h' }], forwardOriginalToken: true }],
  });
});
