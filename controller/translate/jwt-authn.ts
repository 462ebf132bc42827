// The JWT filter istiod puts on a gateway for its RequestAuthentications (pilot/pkg/security/authn
// policy_applier.go convertToEnvoyJwtConfig, networking/plugin/authn): one envoy.filters.http.jwt_authn filter on
// every HTTP connection manager, after istio.metadata_exchange and the CUSTOM RBAC filter, before the other RBAC
// filters, so that AuthorizationPolicies see the verified token's claims in its metadata. Nothing else comes with
// it (no istio_authn filter in this Istio).
//
// Each JWT rule of the policies (sorted by issuer) becomes provider `origins-<i>`: issuer, audiences, its keys
// inline (local_jwks), token locations, forwarding, the payload in metadata under `payload` (claims `scope` and
// `permission`, and the rule's spaceDelimitedClaims, split at spaces), claim headers, clear_route_cache (a gateway
// re-picks its route after the filter, for routes on `@request.auth.claims`). One requirement rule on `/`:
// a token at a provider's location must verify with that provider, a request without one passes (allow_missing):
// with one provider `any(p, allow_missing)`, with several `any(p0, p1, ..., all(any(p0, missing), any(p1, missing), ...))`.
// CORS preflights bypass it.
//
// Keys: the rule's inline `jwks` as written; else what the JWKS resolver has for (issuer, jwksUri) (istiod fetches
// it, PILOT_JWT_ENABLE_REMOTE_JWKS off: jwks_resolver.go), or for an issuer alone from its OpenID discovery
// document; while it has nothing (not fetched yet, or the fetch failed) PUBLIC_ONLY_JWKS, against which no token
// verifies: the rule's tokens are rejected, never accepted unverified.
import { typedAny, type envoy } from '../../xds/envoy.ts';
import type { ValidationError } from '../model/validation.ts';
import { PUBLIC_ONLY_JWKS, type RequestAuthenticationConfig, jwtRulesOf } from '../model/request-authentications.ts';
import { ruleTimeoutNs } from '../model/request-authentication-validation.ts';

// The filter's type URL; it belongs beside the other filter types in xds/type-urls.ts, shared with the proxy.
const JWT_AUTHN_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication' as const;
const JWT_AUTHN_FILTER = 'envoy.filters.http.jwt_authn';

type HttpFilter = envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
type JwtProvider = envoy.extensions.filters.http.jwt_authn.v3.JwtProvider;
type JwtRequirement = envoy.extensions.filters.http.jwt_authn.v3.JwtRequirement;

/** What the JWKS resolver has for a rule's keys. */
export type JwksResult =
  /** The document fetched (inlined as it came). */
  | { jwks: string }
  /** Being fetched: PUBLIC_ONLY_JWKS until it arrives. */
  | { pending: true }
  /** The last fetch failed (the reason is reported): PUBLIC_ONLY_JWKS until a later one succeeds. */
  | { error: string };

/** Where translation reads fetched JWKS from: synchronous, a miss starts a fetch (controller/jwks/resolver.ts). */
export interface JwksSource {
  /** `jwksUri` '' means OpenID discovery from the issuer. `timeoutMs` is the rule's timeout (5 s by default). */
  get(issuer: string, jwksUri: string, timeoutMs: number): JwksResult;
}

/** A source that never fetches: every jwksUri gets PUBLIC_ONLY_JWKS (translation without a resolver: tests, tools). */
export const NO_JWKS_FETCH: JwksSource = { get: () => ({ pending: true }) };

/** buildSpaceDelimitedClaims: `permission` and `scope` always, with the rule's own, deduplicated and sorted. */
function spaceDelimitedClaims(own: readonly string[] | undefined): string[] {
  if (own === undefined) return ['permission', 'scope'];
  return [...new Set([...own, 'permission', 'scope'])].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

export interface JwtFilterResult {
  filter?: HttpFilter;
  /** What the operator should know: rules whose keys could not be fetched, and so reject all their tokens. */
  notes: ValidationError[];
}

/** The jwt_authn filter for the RequestAuthentications of a gateway; none when they have no JWT rule. */
export function jwtAuthnFilter(policies: readonly RequestAuthenticationConfig[], jwks: JwksSource): JwtFilterResult {
  const rules = jwtRulesOf(policies);
  const notes: ValidationError[] = [];
  if (rules.length === 0) return { notes };
  const providers: Record<string, JwtProvider> = {};
  const inner: JwtRequirement[] = [];
  const outer: JwtRequirement[] = [];
  rules.forEach(({ rule, policy, index }, i) => {
    let keys = rule.jwks;
    if (!keys) {
      const timeoutMs = Number(ruleTimeoutNs(rule) / 1_000_000n);
      const got = jwks.get(rule.issuer ?? '', rule.jwksUri ?? '', timeoutMs);
      if ('jwks' in got) keys = got.jwks;
      else {
        keys = PUBLIC_ONLY_JWKS;
        if ('error' in got) {
          const from = rule.jwksUri ? `jwksUri ${rule.jwksUri}` : `the OpenID discovery document of issuer ${JSON.stringify(rule.issuer ?? '')}`;
          notes.push({
            kind: policy.kind,
            namespace: policy.namespace,
            name: policy.name,
            origin: policy.origin,
            field: `spec.jwtRules[${index}].${rule.jwksUri ? 'jwksUri' : 'issuer'}`,
            message: `cannot fetch the JWKS from ${from}: ${got.error}; every token of this rule is rejected (401) until a fetch succeeds, as istiod does (retried in the background)`,
          });
        }
      }
    }
    const p: JwtProvider = {
      local_jwks: { inline_string: keys },
      payload_in_metadata: 'payload',
      normalize_payload_in_metadata: { space_delimited_claims: spaceDelimitedClaims(rule.spaceDelimitedClaims) },
      clear_route_cache: true,
    };
    if (rule.issuer) p.issuer = rule.issuer;
    if (rule.audiences?.length) p.audiences = rule.audiences;
    if (rule.forwardOriginalToken) p.forward = true;
    if (rule.outputPayloadToHeader) p.forward_payload_header = rule.outputPayloadToHeader;
    if (rule.fromHeaders?.length) p.from_headers = rule.fromHeaders.map((h) => ({ name: h.name ?? '', ...(h.prefix ? { value_prefix: h.prefix } : {}) }));
    if (rule.fromParams?.length) p.from_params = rule.fromParams;
    if (rule.fromCookies?.length) p.from_cookies = rule.fromCookies;
    if (rule.outputClaimToHeaders?.length)
      p.claim_to_headers = rule.outputClaimToHeaders.map((c) => ({ header_name: c.header ?? '', claim_name: c.claim ?? '' }));
    const name = `origins-${i}`;
    providers[name] = p;
    inner.push({ requires_any: { requirements: [{ provider_name: name }, { allow_missing: {} }] } });
    outer.push({ provider_name: name });
  });
  const requires: JwtRequirement =
    inner.length === 1 && inner[0] ? inner[0] : { requires_any: { requirements: [...outer, { requires_all: { requirements: inner } }] } };
  const config: envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication = {
    providers,
    rules: [{ match: { prefix: '/' }, requires }],
    bypass_cors_preflight: true,
  };
  return { filter: { name: JWT_AUTHN_FILTER, typed_config: typedAny(JWT_AUTHN_TYPE, config) }, notes };
}
