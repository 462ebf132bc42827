// RequestAuthentication selection and order (the gateway's namespace, then the root namespace, rules sorted by
// issuer), and what a refused one enforces instead (failClosedRequestAuthentication): its tokens are rejected,
// never left unverified.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PUBLIC_ONLY_JWKS,
  type RequestAuthenticationConfig,
  failClosedRequestAuthentication,
  failClosedRequestAuthenticationNote,
  jwtRulesOf,
  selectRequestAuthentications,
} from './request-authentications.ts';
import type { RequestAuthenticationSpec } from './security-types.ts';

const ra = (namespace: string, name: string, spec: RequestAuthenticationSpec): RequestAuthenticationConfig => ({
  kind: 'RequestAuthentication',
  apiVersion: 'security.istio.io/v1',
  name,
  namespace,
  creationTimestamp: '',
  labels: {},
  annotations: {},
  origin: {},
  spec,
});

test('the gateway namespace first, then the root namespace; selectors and targetRefs as ShouldAttachPolicy', () => {
  const all = [
    ra('istio-system', 'root', {}),
    ra('edge', 'own', {}),
    ra('edge', 'own-selected', { selector: { matchLabels: { istio: 'edge' } } }),
    ra('edge', 'own-other', { selector: { matchLabels: { app: 'web' } } }),
    ra('edge', 'own-target', { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }] }),
    ra('default', 'elsewhere', {}),
  ];
  const names = (l: RequestAuthenticationConfig[]): string[] => l.map((p) => p.name);
  assert.deepEqual(names(selectRequestAuthentications(all, 'istio-system', 'edge', { istio: 'edge' })), ['own', 'own-selected', 'root']);
  const gatewayApi = { istio: 'edge', 'gateway.networking.k8s.io/gateway-name': 'gw' };
  assert.deepEqual(names(selectRequestAuthentications(all, 'istio-system', 'edge', gatewayApi)), ['own', 'own-selected', 'own-target', 'root']);
  assert.deepEqual(names(selectRequestAuthentications(all, 'istio-system', 'istio-system', {})), ['root']);
});

test('rules are sorted by issuer (bytewise), equal issuers keep policy order', () => {
  const rules = jwtRulesOf([
    ra('edge', 'a', { jwtRules: [{ issuer: 'z' }, { issuer: 'b', fromParams: ['first'] }] }),
    ra('istio-system', 'b', { jwtRules: [{ issuer: 'b', fromParams: ['second'] }, { issuer: 'B' }, { jwksUri: 'http://x' }, { issuer: 'é' }] }),
  ]);
  assert.deepEqual(
    rules.map((r) => `${r.policy.name}[${r.index}] ${r.rule.issuer ?? ''}`),
    ['b[2] ', 'b[1] B', 'a[1] b', 'b[0] b', 'a[0] z', 'b[3] é'],
  );
});

test('a refused RequestAuthentication keeps its issuers and valid token locations, with keys no token verifies against', () => {
  const selector = { matchLabels: { istio: 'ingressgateway' } };
  const spec: RequestAuthenticationSpec = {
    selector,
    jwtRules: [
      {
        issuer: 'a',
        jwks: 'bad',
        audiences: [''],
        fromHeaders: [{ name: 'x-jwt', prefix: 'Bearer ' }, { name: '' }],
        fromParams: ['', 't'],
        fromCookies: [''],
        forwardOriginalToken: true,
        outputClaimToHeaders: [{ header: 'x y', claim: 'sub' }],
      },
      { jwksUri: 'ftp://x' },
    ],
  };
  assert.deepEqual(failClosedRequestAuthentication(spec, true), {
    selector,
    jwtRules: [{ jwks: PUBLIC_ONLY_JWKS, issuer: 'a', fromHeaders: [{ name: 'x-jwt', prefix: 'Bearer ' }], fromParams: ['t'] }, { jwks: PUBLIC_ONLY_JWKS }],
  });
  assert.deepEqual(failClosedRequestAuthentication(spec, false), { jwtRules: [{ jwks: PUBLIC_ONLY_JWKS }] }, 'undecodable: its namespace, default locations');
  assert.match(failClosedRequestAuthenticationNote(true), /rejected with 401/);
  assert.match(failClosedRequestAuthenticationNote(false), /whole namespace/);
});

test("PUBLIC_ONLY_JWKS is istiod's text byte for byte", () => {
  assert.ok(PUBLIC_ONLY_JWKS.startsWith('{\n  "keys": [\n    {\n      "kty": "RSA",\n      "e": "AQAB",\n      "n": "0xObjM0U'));
  assert.ok(PUBLIC_ONLY_JWKS.endsWith('L574T1w"\n    }\n  ]\n}'));
});
