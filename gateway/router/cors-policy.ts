// Envoy's CORS policy (envoy.extensions.filters.http.cors.v3.CorsPolicy, or the older route-level
// envoy.config.route.v3.CorsPolicy) as Istio writes it from VirtualService `corsPolicy` into a route's or
// virtual host's typed_per_filter_config, compiled once per RouteConfiguration. The CORS filter
// (http/cors.ts) applies it per request.
import { ConfigError, anyType, arr, bool, checkFields, str, type Json } from '../xds/json.ts';
import { compileStringMatcher, type StringMatch } from './matchers.ts';
import { compileRuntimeFraction } from './fraction.ts';

/** The cors filter's per-route config (what Istio writes); the older route-level proto is accepted too. */
export const CORS_TYPE = 'envoy.extensions.filters.http.cors.v3.CorsPolicy';
export const ROUTE_CORS_TYPE = 'envoy.config.route.v3.CorsPolicy';

export interface CorsPolicy {
  allowOrigins: StringMatch[] | undefined;
  allowMethods: string | undefined;
  allowHeaders: string | undefined;
  exposeHeaders: string | undefined;
  maxAge: string | undefined;
  allowCredentials: boolean | undefined;
  allowPrivateNetworkAccess: boolean | undefined;
  forwardNotMatchingPreflights: boolean | undefined;
  enabled: number;
  shadowEnabled: number;
}

export function compileCorsPolicy(v: Json, where: string): CorsPolicy {
  if (anyType(v) !== CORS_TYPE && anyType(v) !== ROUTE_CORS_TYPE) throw new ConfigError(`${where}: expected ${CORS_TYPE}, got ${anyType(v)}`);
  checkFields(v, where, [
    '@type',
    'allow_origin_string_match',
    'allow_methods',
    'allow_headers',
    'expose_headers',
    'max_age',
    'allow_credentials',
    'filter_enabled',
    'shadow_enabled',
    'allow_private_network_access',
    'forward_not_matching_preflights',
  ]);
  const list = arr(v.allow_origin_string_match, `${where}.allow_origin_string_match`);
  const optBool = (x: unknown, f: string): boolean | undefined => (x === undefined ? undefined : bool(x, `${where}.${f}`));
  const optStr = (x: unknown, f: string): string | undefined => {
    const s = str(x, `${where}.${f}`);
    return s === '' ? undefined : s;
  };
  return {
    allowOrigins: list.length ? list.map((m, i) => compileStringMatcher(m, `${where}.allow_origin_string_match[${i}]`)) : undefined,
    allowMethods: optStr(v.allow_methods, 'allow_methods'),
    allowHeaders: optStr(v.allow_headers, 'allow_headers'),
    exposeHeaders: optStr(v.expose_headers, 'expose_headers'),
    maxAge: optStr(v.max_age, 'max_age'),
    allowCredentials: optBool(v.allow_credentials, 'allow_credentials'),
    allowPrivateNetworkAccess: optBool(v.allow_private_network_access, 'allow_private_network_access'),
    forwardNotMatchingPreflights: optBool(v.forward_not_matching_preflights, 'forward_not_matching_preflights'),
    // filter_enabled absent: enabled (100%); shadow_enabled absent: off.
    enabled: compileRuntimeFraction(v.filter_enabled, `${where}.filter_enabled`, 1),
    shadowEnabled: compileRuntimeFraction(v.shadow_enabled, `${where}.shadow_enabled`, 0),
  };
}
