// Envoy's CORS filter (source/extensions/filters/http/cors/cors_filter.cc) with the per-route policy Istio
// writes from VirtualService `corsPolicy` (compiled by router/cors-policy.ts).
// Route policy first, then the virtual host's: for each field the first policy that sets it wins.
//
// Request side: with a non-empty Origin, a preflight (OPTIONS + Access-Control-Request-Method) is answered
// by the filter itself: 200, access-control-allow-origin (only if the origin is allowed), -allow-credentials,
// -allow-methods ("*" echoes the requested method), -allow-headers ("*" echoes the requested headers),
// -max-age — unless the origin is not allowed and forward_not_matching_preflights (default true) lets the
// preflight through to the upstream. Response side: for an allowed origin, access-control-allow-origin,
// -allow-credentials and -expose-headers are set on the response.
import { sample } from '../router/fraction.ts';
import type { CorsPolicy } from '../router/cors-policy.ts';
import { setHeader } from '../../xds/header-list.ts';

export const CORS_DETAILS = 'cors_response';

export interface CorsRequest {
  method: string;
  origin: string | undefined;
  requestMethod: string | undefined;
  requestHeaders: string | undefined;
  requestPrivateNetwork: string | undefined;
}

/** What the filter decided on the request side. */
export interface CorsDecision {
  /** Preflight answered here: the response headers (after `:status 200`), in Envoy's order. */
  preflight: string[] | undefined;
  /** The origin to echo on the response (an allowed CORS request), or undefined. */
  latchedOrigin: string | undefined;
}

function first<T>(policies: readonly CorsPolicy[], f: (p: CorsPolicy) => T | undefined): T | undefined {
  for (const p of policies) {
    const v = f(p);
    if (v !== undefined) return v;
  }
  return undefined;
}

function originAllowed(policies: readonly CorsPolicy[], origin: string): boolean {
  const matchers = first(policies, (p) => p.allowOrigins) ?? [];
  for (const m of matchers) if (m('*') || m(origin)) return true;
  return false;
}

/** decodeHeaders. `policies`: route policy first, then the virtual host's (non-empty list). */
export function corsDecode(policies: readonly CorsPolicy[], req: CorsRequest, random: () => number = Math.random): CorsDecision | undefined {
  const top = policies[0];
  if (!top) return undefined;
  const enabled = sample(top.enabled, random);
  const shadow = sample(top.shadowEnabled, random);
  if (!enabled && !shadow) return undefined;
  const origin = req.origin;
  if (!origin) return undefined;
  const allowed = originAllowed(policies, origin);
  if (shadow && !enabled) return undefined;
  const latchedOrigin = allowed ? origin : undefined;
  if (req.method !== 'OPTIONS' || !req.requestMethod) return { preflight: undefined, latchedOrigin };
  if (!allowed && (first(policies, (p) => p.forwardNotMatchingPreflights) ?? true)) return { preflight: undefined, latchedOrigin };
  const h: string[] = [];
  if (allowed) h.push('access-control-allow-origin', origin);
  if (first(policies, (p) => p.allowCredentials) === true) h.push('access-control-allow-credentials', 'true');
  const methods = first(policies, (p) => p.allowMethods);
  if (methods !== undefined) h.push('access-control-allow-methods', methods === '*' ? req.requestMethod : methods);
  const headers = first(policies, (p) => p.allowHeaders);
  if (headers !== undefined) h.push('access-control-allow-headers', headers === '*' ? (req.requestHeaders ?? '') : headers);
  const maxAge = first(policies, (p) => p.maxAge);
  if (maxAge !== undefined) h.push('access-control-max-age', maxAge);
  if (first(policies, (p) => p.allowPrivateNetworkAccess) === true && req.requestPrivateNetwork === 'true')
    h.push('access-control-allow-private-network', 'true');
  return { preflight: h, latchedOrigin };
}

/** encodeHeaders: adds the CORS response headers for an allowed origin (flat, lowercase names). */
export function corsEncode(policies: readonly CorsPolicy[], latchedOrigin: string | undefined, headers: string[]): void {
  if (latchedOrigin === undefined) return;
  setHeader(headers, 'access-control-allow-origin', latchedOrigin);
  if (first(policies, (p) => p.allowCredentials) === true) setHeader(headers, 'access-control-allow-credentials', 'true');
  const expose = first(policies, (p) => p.exposeHeaders);
  if (expose !== undefined) setHeader(headers, 'access-control-expose-headers', expose);
}
