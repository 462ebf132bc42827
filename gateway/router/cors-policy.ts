// Envoy's CORS policy (envoy.extensions.filters.http.cors.v3.CorsPolicy, or the older route-level
// envoy.config.route.v3.CorsPolicy) as Istio writes it from VirtualService `corsPolicy` into a route's or
// virtual host's typed_per_filter_config, compiled once per RouteConfiguration. The CORS filter
// (http/cors.ts) applies it per request.
import { unpackAny, type Any, type envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError, anyType } from '../xds/json.ts';
import { compileStringMatcher, type StringMatch } from './matchers.ts';
import { compileRuntimeFraction } from './fraction.ts';

/** The cors filter's per-route config (what Istio writes); the older route-level proto is accepted too. */
export const CORS_TYPE = 'envoy.extensions.filters.http.cors.v3.CorsPolicy' as const;
export const ROUTE_CORS_TYPE = 'envoy.config.route.v3.CorsPolicy' as const;

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

type EnvoyCorsPolicy = envoy.extensions.filters.http.cors.v3.CorsPolicy | envoy.config.route.v3.CorsPolicy;

const CORS_FIELDS = {
  allow_origin_string_match: true,
  allow_methods: true,
  allow_headers: true,
  expose_headers: true,
  max_age: true,
  allow_credentials: true,
  filter_enabled: true,
  shadow_enabled: true,
  allow_private_network_access: true,
  forward_not_matching_preflights: true,
} as const;
const checkCors = fieldTable(CORS_TYPE, CORS_FIELDS);
const checkRouteCors = fieldTable(ROUTE_CORS_TYPE, CORS_FIELDS);

/** Compiles a per-route CORS policy (an Any of either CorsPolicy type). */
export function compileCorsPolicy(v: Any, where: string): CorsPolicy {
  const t = anyType(v);
  let p: EnvoyCorsPolicy;
  if (t === CORS_TYPE) {
    p = unpackAny(v, `type.googleapis.com/${CORS_TYPE}`);
    checkCors(p, where);
  } else if (t === ROUTE_CORS_TYPE) {
    p = unpackAny(v, `type.googleapis.com/${ROUTE_CORS_TYPE}`);
    checkRouteCors(p, where);
  } else throw new ConfigError(`${where}: expected ${CORS_TYPE}, got ${t}`);
  const list = p.allow_origin_string_match ?? [];
  const optStr = (s: string | undefined): string | undefined => (s === '' ? undefined : s);
  return {
    allowOrigins: list.length ? list.map((m, i) => compileStringMatcher(m, `${where}.allow_origin_string_match[${i}]`)) : undefined,
    allowMethods: optStr(p.allow_methods),
    allowHeaders: optStr(p.allow_headers),
    exposeHeaders: optStr(p.expose_headers),
    maxAge: optStr(p.max_age),
    allowCredentials: p.allow_credentials,
    allowPrivateNetworkAccess: p.allow_private_network_access,
    forwardNotMatchingPreflights: p.forward_not_matching_preflights,
    // filter_enabled absent: enabled (100%); shadow_enabled absent: off.
    enabled: compileRuntimeFraction(p.filter_enabled, `${where}.filter_enabled`, 1),
    shadowEnabled: compileRuntimeFraction(p.shadow_enabled, `${where}.shadow_enabled`, 0),
  };
}
