// Which RequestAuthentications apply to a gateway proxy and the JWT rules they give it, as istiod finds them
// (pilot/pkg/model/authentication.go GetJwtPoliciesForWorkload, security/authn/policy_applier.go): those of the
// gateway's own namespace, then those of the root namespace, each in creation order, attached as any security
// policy is (ShouldAttachPolicy: selector, or targetRefs for a Gateway API gateway); their rules concatenated and
// sorted by issuer. A RequestAuthentication of any other namespace never applies.
import type { Config } from './config.ts';
import type { Labels } from './labels.ts';
import { attaches } from './authorization-policies.ts';
import type { JWTRule, RequestAuthenticationSpec } from './security-types.ts';

export type RequestAuthenticationConfig = Config<RequestAuthenticationSpec>;

/** A JWT rule with the RequestAuthentication it comes from (for reports). */
export interface SourcedJwtRule {
  rule: JWTRule;
  policy: RequestAuthenticationConfig;
  /** The rule's index in the policy's spec.jwtRules. */
  index: number;
}

/**
 * The JWKS istiod inlines when it cannot get a rule's keys (model.PublicOnlyJwks): the public half of an RSA key
 * whose private half was discarded, so no token verifies against it and every token of the rule is rejected.
 * Written as istiod writes it, byte for byte.
 */
export const PUBLIC_ONLY_JWKS = JSON.stringify(
  {
    keys: [
      {
        kty: 'RSA',
        e: 'AQAB',
        n: '0xObjM0UvS_oaazjpEYlAbwctEJ4L8pH3OuTb7qth7gUwqet-EzQB4dgFdvSdMgrLnSncQGRjpEYz3F3viIbH-3EN3TxSlPNviHxeOdyiBVfumN8dMxbLvVJUpfNOnvmMxJcl-8NNjAwcOjk4otSALaYgYYyOPyvKtgVdrQr-FoubWX4yrjxW-MJ2-7OBeepUUNOsVwGV23YX03sVkkyvY3otRflkBcY3_HKpBxJl9wk2GyOShN4_PNUF9-vwfnvOXMbCDX-w4PTef4geeb_GiT40YCKHTKMSPVanGRn5GExIWmki-mmqh94-mPTJyBR74ShspL3BxPZitDL574T1w',
      },
    ],
  },
  null,
  2,
);

/**
 * The RequestAuthentications applying to a gateway in `namespace` with `labels`, from validated ones sorted by
 * creation: the gateway's own namespace first, then the root namespace (once, when they are the same).
 */
export function selectRequestAuthentications(
  sorted: readonly RequestAuthenticationConfig[],
  rootNamespace: string,
  namespace: string,
  labels: Labels,
): RequestAuthenticationConfig[] {
  const out: RequestAuthenticationConfig[] = [];
  for (const ns of [...new Set([namespace, rootNamespace])]) {
    for (const p of sorted) if (p.namespace === ns && attaches(p, namespace, labels)) out.push(p);
  }
  return out;
}

/**
 * The JWT rules of the selected policies in istiod's order: concatenated, then sorted by issuer. istiod sorts with
 * Go's slices.SortFunc, which is an insertion sort (stable) up to 12 rules; this sort is stable for any number, so
 * the two differ only for more than 12 rules of which some share an issuer.
 */
export function jwtRulesOf(policies: readonly RequestAuthenticationConfig[]): SourcedJwtRule[] {
  const rules = policies.flatMap((policy) => (policy.spec.jwtRules ?? []).map((rule, index) => ({ rule, policy, index })));
  const issuer = (r: SourcedJwtRule): string => r.rule.issuer ?? '';
  // Go compares strings bytewise; for the UTF-16 code units JavaScript compares, Buffer.compare of UTF-8 agrees.
  return rules.sort((a, b) => Buffer.compare(Buffer.from(issuer(a)), Buffer.from(issuer(b))));
}

/**
 * What a RequestAuthentication that fails validation enforces instead, so that refusing it never opens the
 * gateway. istiod relies on its webhook to keep such an object out, which leaves the tokens it was meant to verify
 * unverified: an AuthorizationPolicy requiring a request principal still denies them (no JWT metadata appears), but
 * one denying a particular principal or claim would let them through. So each of its JWT rules stays, with its issuer
 * and the token locations that are valid, but with PUBLIC_ONLY_JWKS as its keys: a request carrying such a token is
 * rejected (401), as when istiod cannot fetch a JWKS; a request without one is untouched. A spec that could not be
 * decoded at all gives one rule without issuer at the default locations (Authorization: Bearer, access_token), in
 * the policy's namespace: every token there that no other rule verifies is rejected.
 */
export function failClosedRequestAuthentication(spec: RequestAuthenticationSpec, decoded: boolean): RequestAuthenticationSpec {
  if (!decoded) return { jwtRules: [{ jwks: PUBLIC_ONLY_JWKS }] };
  const jwtRules = (spec.jwtRules ?? []).map((r): JWTRule => {
    const out: JWTRule = { jwks: PUBLIC_ONLY_JWKS };
    if (r.issuer) out.issuer = r.issuer;
    const headers = r.fromHeaders?.filter((h) => h.name);
    if (headers?.length) out.fromHeaders = headers;
    const params = r.fromParams?.filter((p) => p);
    if (params?.length) out.fromParams = params;
    const cookies = r.fromCookies?.filter((c) => c);
    if (cookies?.length) out.fromCookies = cookies;
    return out;
  });
  return {
    ...(spec.selector ? { selector: spec.selector } : {}),
    ...(spec.targetRef ? { targetRef: spec.targetRef } : {}),
    ...(spec.targetRefs ? { targetRefs: spec.targetRefs } : {}),
    ...(jwtRules.length ? { jwtRules } : {}),
  };
}

/** The sentence a refused RequestAuthentication's report ends with: what the gateway enforces for it instead. */
export function failClosedRequestAuthenticationNote(decoded: boolean): string {
  return decoded
    ? 'until it is fixed, a request carrying a token of its issuers (at its token locations) is rejected with 401, as when a JWKS cannot be fetched, so the gateway does not fail open'
    : 'until it is fixed, a request carrying a token at the default locations (Authorization: Bearer, access_token) that no other RequestAuthentication verifies is rejected with 401, in its whole namespace, so the gateway does not fail open';
}
