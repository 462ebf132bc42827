// The Envoy matchers an AuthorizationPolicy value becomes (pilot/pkg/security/authz/matcher): `*` alone is
// "present" (or the regex `.+`), a leading `*` a suffix match, a trailing `*` a prefix match, anything else
// exact; hosts compare case-insensitively; JWT claims are read from the jwt_authn filter's metadata.
import type { envoy } from '../../xds/envoy.ts';

type StringMatcher = envoy.type.matcher.v3.StringMatcher;
type HeaderMatcher = envoy.config.route.v3.HeaderMatcher;
type ValueMatcher = envoy.type.matcher.v3.ValueMatcher;
type MetadataMatcher = envoy.type.matcher.v3.MetadataMatcher;

/** Where Envoy's jwt_authn filter leaves a verified token's claims (filters.EnvoyJwtFilterName / Payload). */
const JWT_FILTER = 'envoy.filters.http.jwt_authn';
const JWT_PAYLOAD = 'payload';

/** Go's regexp.QuoteMeta: the RE2 metacharacters escaped. */
export function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

export const regexMatcher = (regex: string): StringMatcher => ({ safe_regex: { regex } });

/** StringMatcherWithPrefix: `prefix` is prepended to what is matched (`spiffe://` for principals). */
export function stringMatcher(v: string, prefix = ''): StringMatcher {
  if (v === '*') return regexMatcher('.+');
  if (v.startsWith('*')) return prefix === '' ? { suffix: v.slice(1) } : regexMatcher(`${prefix}.*${quoteMeta(v.slice(1))}`);
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1) };
  return { exact: prefix + v };
}

/** HeaderMatcher / HostMatcher (the latter ignoring case). An empty prefix or suffix is invalid, hence `*` first. */
export function headerMatcher(name: string, v: string, ignoreCase = false): HeaderMatcher {
  if (v === '*') return { name, present_match: true };
  const ic = ignoreCase ? { ignore_case: true } : {};
  if (v.startsWith('*')) return { name, string_match: { suffix: v.slice(1), ...ic } };
  if (v.endsWith('*')) return { name, string_match: { prefix: v.slice(0, -1), ...ic } };
  return { name, string_match: { exact: v, ...ic } };
}

/** OrMatcher: one matcher as it is, several or-ed. */
export function orMatcher(matchers: ValueMatcher[]): ValueMatcher {
  return matchers.length === 1 && matchers[0] ? matchers[0] : { or_match: { value_matchers: matchers } };
}

/** StringOrMatcher. */
export function stringOrMatcher(values: readonly string[]): ValueMatcher {
  return orMatcher(values.map((v) => ({ string_match: stringMatcher(v) })));
}

/** A metadata matcher on one key of a filter's metadata (MetadataValueMatcher). */
export function metadataMatcher(filter: string, key: string, value: ValueMatcher): MetadataMatcher {
  return { filter, path: [{ key }], value };
}

/** A JWT claim that must be this string (MetadataStringMatcherForJWTClaim), as request principals use. */
export function jwtClaimString(claim: string, m: StringMatcher): MetadataMatcher {
  return { filter: JWT_FILTER, path: [{ key: JWT_PAYLOAD }, { key: claim }], value: { string_match: m } };
}

/**
 * A JWT claim (nested keys) matching `value` either as one item of a list claim or as a plain string claim
 * (MetadataListValueMatcher with useExtendedJwt, which istiod always sets).
 */
export function jwtClaimListOrValue(claims: readonly string[], value: ValueMatcher): MetadataMatcher {
  return {
    filter: JWT_FILTER,
    path: [JWT_PAYLOAD, ...claims].map((key) => ({ key })),
    value: { or_match: { value_matchers: [{ list_match: { one_of: value } }, value] } },
  };
}
