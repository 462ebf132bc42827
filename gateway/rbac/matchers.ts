// The leaf matchers permissions and principals share (Envoy source/extensions/filters/common/rbac/matchers.cc),
// and the And/Or/Not combinators.
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { compileHeaderMatcher, compileStringMatcher } from '../router/matchers.ts';
import { compileCidrRange } from './ip.ts';
import type { IpAddr } from './ip.ts';
import { pathWithoutQuery, type RbacMatcher, type RbacRequest } from './request.ts';

/** A field set on `o` that the proxy cannot enforce: a ConfigError naming it and why, so the update is NACKed rather than failing open. */
export function refuse(o: object, field: string, where: string, why: string): void {
  if ((o as Record<string, unknown>)[field] !== undefined) throw new ConfigError(`${where}.${field}: ${why}`);
}

export function all(ms: readonly RbacMatcher[]): RbacMatcher {
  if (ms.length === 1) return ms[0] as RbacMatcher;
  return (req) => {
    for (const m of ms) if (!m(req)) return false;
    return true;
  };
}

export function any(ms: readonly RbacMatcher[]): RbacMatcher {
  if (ms.length === 1) return ms[0] as RbacMatcher;
  return (req) => {
    for (const m of ms) if (m(req)) return true;
    return false;
  };
}

/** A Permission.Set's rules or a Principal.Set's ids: at least one (Envoy's validation: min_items 1). */
export function compileList<T>(list: readonly T[] | undefined, where: string, compile: (x: T, where: string) => RbacMatcher): RbacMatcher[] {
  if (list === undefined || list.length === 0) throw new ConfigError(`${where}: at least one entry is required`);
  return list.map((x, i) => compile(x, `${where}[${i}]`));
}

/** `any: true` (Envoy's validation: the field, when set, must be true). */
export function always(v: boolean | undefined, where: string): RbacMatcher {
  if (v !== true) throw new ConfigError(`${where}: must be true`);
  return () => true;
}

/** route.v3.HeaderMatcher on the request headers and pseudo-headers (Envoy HeaderUtility, as routes match them). */
export function headerMatcher(m: envoy.config.route.v3.HeaderMatcher, where: string): RbacMatcher {
  return compileHeaderMatcher(m, where);
}

const checkPathMatcher = fieldTable('envoy.type.matcher.v3.PathMatcher', { path: true });

/**
 * type.matcher.v3.PathMatcher: the string matcher on :path up to its first '?' or '#'; a request without
 * :path never matches.
 */
export function urlPathMatcher(m: envoy.type.matcher.v3.PathMatcher, where: string): RbacMatcher {
  checkPathMatcher(m, where);
  if (m.path === undefined) throw new ConfigError(`${where}.path: is required`);
  const sm = compileStringMatcher(m.path, `${where}.path`);
  return (req) => req.path !== '' && sm(pathWithoutQuery(req.path));
}

/** config.core.v3.CidrRange on one of the request's addresses. */
export function ipMatcher(c: envoy.config.core.v3.CidrRange, where: string, address: (req: RbacRequest) => IpAddr): RbacMatcher {
  const inRange = compileCidrRange(c, where);
  return (req) => inRange(address(req));
}
