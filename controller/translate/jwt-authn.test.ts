// The jwt_authn filter from RequestAuthentications: what a rule's keys become for each answer of the JWKS source
// (fetched: inlined as fetched; being fetched: the public-only JWKS, silently; failed: the public-only JWKS and a
// report), the requirement for one provider and for several, and no filter without rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type JwksResult, type JwksSource, jwtAuthnFilter } from './jwt-authn.ts';
import { PUBLIC_ONLY_JWKS, type RequestAuthenticationConfig } from '../model/request-authentications.ts';
import type { RequestAuthenticationSpec } from '../model/security-types.ts';
import type { envoy } from '../../xds/envoy.ts';

const ra = (spec: RequestAuthenticationSpec): RequestAuthenticationConfig => ({
  kind: 'RequestAuthentication',
  apiVersion: 'security.istio.io/v1',
  name: 'jwt',
  namespace: 'istio-system',
  creationTimestamp: '',
  labels: {},
  annotations: {},
  origin: {},
  spec,
});

type Config = envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;

function source(answers: Record<string, JwksResult>): JwksSource & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    get(issuer, jwksUri, timeoutMs) {
      asked.push(`${issuer} ${jwksUri} ${timeoutMs}`);
      return answers[jwksUri || issuer] ?? { pending: true };
    },
  };
}

test('no rules, no filter', () => {
  assert.deepEqual(jwtAuthnFilter([ra({}), ra({ jwtRules: [] })], source({})), { notes: [] });
});

test('keys: inline as written (never fetched), fetched as fetched, pending or failed as the public-only JWKS', () => {
  const jwks = source({
    'https://idp/fetched': { jwks: '{"keys":[1]}' },
    'https://idp/failed': { error: 'connect ECONNREFUSED 127.0.0.1:1' },
    'https://issuer.only': { error: 'status 404, message "not found"' },
  });
  const { filter, notes } = jwtAuthnFilter(
    [
      ra({
        jwtRules: [
          { issuer: 'a-inline', jwks: '{"keys":[]}', jwksUri: 'https://idp/never' },
          { issuer: 'b-fetched', jwksUri: 'https://idp/fetched', timeout: '1500ms' },
          { issuer: 'c-pending', jwksUri: 'https://idp/pending' },
          { issuer: 'd-failed', jwksUri: 'https://idp/failed' },
          { issuer: 'https://issuer.only' },
        ],
      }),
    ],
    jwks,
  );
  const config = filter?.typed_config as Config;
  assert.equal(filter?.name, 'envoy.filters.http.jwt_authn');
  assert.deepEqual(
    Object.values(config.providers ?? {}).map((p) => p.local_jwks?.inline_string),
    ['{"keys":[]}', '{"keys":[1]}', PUBLIC_ONLY_JWKS, PUBLIC_ONLY_JWKS, PUBLIC_ONLY_JWKS],
  );
  assert.deepEqual(jwks.asked, [
    'b-fetched https://idp/fetched 1500',
    'c-pending https://idp/pending 5000',
    'd-failed https://idp/failed 5000',
    'https://issuer.only  5000',
  ]);
  assert.deepEqual(
    notes.map((n) => `${n.field}: ${n.message}`),
    [
      'spec.jwtRules[3].jwksUri: cannot fetch the JWKS from jwksUri https://idp/failed: connect ECONNREFUSED 127.0.0.1:1; every token of this rule is rejected (401) until a fetch succeeds, as istiod does (retried in the background)',
      'spec.jwtRules[4].issuer: cannot fetch the JWKS from the OpenID discovery document of issuer "https://issuer.only": status 404, message "not found"; every token of this rule is rejected (401) until a fetch succeeds, as istiod does (retried in the background)',
    ],
  );
});

test('one provider: any(origins-0, allow_missing); several: any(each, all(any(each, allow_missing)))', () => {
  const one = jwtAuthnFilter([ra({ jwtRules: [{ issuer: 'a', jwks: '{}' }] })], source({})).filter?.typed_config as Config;
  assert.deepEqual(one.rules, [
    { match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] } } },
  ]);
  assert.equal(one.bypass_cors_preflight, true);
  const two = jwtAuthnFilter(
    [
      ra({
        jwtRules: [
          { issuer: 'b', jwks: '{}' },
          { issuer: 'a', jwks: '{}' },
        ],
      }),
    ],
    source({}),
  ).filter?.typed_config as Config;
  const either = (n: string): object => ({ requires_any: { requirements: [{ provider_name: n }, { allow_missing: {} }] } });
  assert.deepEqual(two.rules?.[0]?.requires, {
    requires_any: {
      requirements: [
        { provider_name: 'origins-0' },
        { provider_name: 'origins-1' },
        { requires_all: { requirements: [either('origins-0'), either('origins-1')] } },
      ],
    },
  });
  assert.deepEqual(
    Object.entries(two.providers ?? {}).map(([k, p]) => `${k} ${p.issuer}`),
    ['origins-0 a', 'origins-1 b'],
  );
});
