// One AuthorizationPolicy rule as an Envoy RBAC Policy (pilot/pkg/security/authz/model: New, Generate and
// the generators). `to` operations become permissions, `from` sources principals; each `when` condition joins
// every permission (destination.*, connection.sni, experimental.envoy.filters.*) or every principal (the rest).
// Within one, the fields are AND-ed in istiod's order: hosts, methods, paths, ports, then `when`; principals,
// requestPrincipals, serviceAccounts, trustDomains, namespaces, remoteIpBlocks, ipBlocks, then `when`.
import { typedAny, type envoy } from '../../xds/envoy.ts';
import { containsPathTemplate, portNumber } from '../model/authorization-policy-validation.ts';
import type { AuthorizationAction, Rule } from '../model/security-types.ts';
import { TRUST_DOMAIN } from '../model/mesh.ts';
import { parseCidr } from '../model/netip.ts';
import {
  headerMatcher,
  jwtClaimListOrValue,
  jwtClaimString,
  metadataMatcher,
  orMatcher,
  quoteMeta,
  regexMatcher,
  stringMatcher,
  stringOrMatcher,
} from './rbac-matchers.ts';

type Permission = envoy.config.rbac.v3.Permission;
type Principal = envoy.config.rbac.v3.Principal;
export type Policy = envoy.config.rbac.v3.Policy;

const URI_TEMPLATE_TYPE = 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig' as const;

/** A matcher, nothing (a DENY or AUDIT rule just drops it), or why the value cannot be matched here. */
type Out<T> = T | undefined | { error: string };
const isError = <T>(o: Out<T>): o is { error: string } => typeof o === 'object' && o !== null && 'error' in o;
const httpOnly = (key: string): { error: string } => ({ error: `${JSON.stringify(key)} is HTTP only` });

/** A generator matches one value (results OR-ed), or, `extended`, all values at once. */
interface Generator<T> {
  one?: (key: string, value: string, forTCP: boolean) => Out<T>;
  all?: (key: string, values: readonly string[], forTCP: boolean) => Out<T>;
}

/** One condition of a rule: a key with its values and notValues. */
interface Condition<T> {
  key: string;
  values: readonly string[];
  notValues: readonly string[];
  gen: Generator<T>;
}

// ---- generators (generator.go) ------------------------------------------------------------------------

function cidr(value: string): Out<envoy.config.core.v3.CidrRange> {
  const c = parseCidr(value);
  return c.ok ? { address_prefix: c.value.address, prefix_len: c.value.bits } : { error: c.error };
}

function mapOut<A, B>(o: Out<A>, f: (a: A) => B): Out<B> {
  if (o === undefined) return undefined;
  return isError(o) ? { error: o.error } : f(o);
}

const destIP: Generator<Permission> = { one: (_k, v) => mapOut(cidr(v), (c) => ({ destination_ip: c })) };

const destPort: Generator<Permission> = {
  one: (_k, v) => {
    const p = portNumber(v);
    return p === undefined ? { error: `invalid port ${v}` } : { destination_port: p };
  },
};

const connSNI: Generator<Permission> = { one: (_k, v) => ({ requested_server_name: stringMatcher(v) }) };

/** `experimental.envoy.filters.<filter>[<key>]`: the filter's metadata; a `[v]` value matches an item of a list. */
const envoyFilter: Generator<Permission> = {
  all: (key, values) => {
    const rest = key.replace(/^experimental\./, '').replace(/\]$/, '');
    const at = rest.indexOf('[');
    if (at < 0) return { error: `invalid key: ${key}` };
    const matchers = values.map((v): envoy.type.matcher.v3.ValueMatcher => {
      if (v.startsWith('[') && v.endsWith(']')) return { list_match: { one_of: { string_match: stringMatcher(v.replace(/^[[\]]+|[[\]]+$/g, '')) } } };
      return { string_match: stringMatcher(v) };
    });
    return { metadata: metadataMatcher(rest.slice(0, at), rest.slice(at + 1), orMatcher(matchers)) };
  },
};

const host: Generator<Permission> = { one: (k, v, tcp) => (tcp ? httpOnly(k) : { header: headerMatcher(':authority', v, true) }) };

const method: Generator<Permission> = { one: (k, v, tcp) => (tcp ? httpOnly(k) : { header: headerMatcher(':method', v) }) };

/** `{*}` and `{**}` make a path a URI template (Envoy's `*` and `**`); otherwise the usual `*` forms. */
const path: Generator<Permission> = {
  one: (k, v, tcp) => {
    if (tcp) return httpOnly(k);
    if (!containsPathTemplate(v)) return { url_path: { path: stringMatcher(v) } };
    const template = v.replaceAll('{**}', '**').replaceAll('{*}', '*');
    return { uri_template: { name: 'uri-template', typed_config: typedAny(URI_TEMPLATE_TYPE, { path_template: template }) } };
  },
};

/** A peer identity check: the mTLS peer's URI SAN (useAuthenticated: a gateway never uses filter state). */
const authenticated = (m: envoy.type.matcher.v3.StringMatcher): Principal => ({ authenticated: { principal_name: m } });

const srcIP: Generator<Principal> = { one: (_k, v) => mapOut(cidr(v), (c) => ({ direct_remote_ip: c })) };

const remoteIP: Generator<Principal> = { one: (_k, v) => mapOut(cidr(v), (c) => ({ remote_ip: c })) };

const srcNamespace: Generator<Principal> = {
  one: (_k, v) => authenticated(regexMatcher(`.*/ns/${v.split('*').map(quoteMeta).join('.*')}/.*`)),
};

/** `sa` (in the policy's namespace) or `ns/sa`, anywhere in the SPIFFE path after the namespace. */
function serviceAccount(policyNamespace: string): Generator<Principal> {
  return {
    one: (_k, v) => {
      const slash = v.indexOf('/');
      const [ns, sa] = slash < 0 ? [policyNamespace, v] : [v.slice(0, slash), v.slice(slash + 1)];
      return authenticated(regexMatcher(`spiffe://.+/ns/${quoteMeta(ns)}/(.+/|)sa/${quoteMeta(sa)}(/.+)?`));
    },
  };
}

const srcTrustDomain: Generator<Principal> = {
  one: (_k, v) => {
    if (v === '*') return authenticated({ prefix: 'spiffe://' });
    if (!v.includes('*')) return authenticated({ prefix: `spiffe://${v}/` });
    const star = v.indexOf('*');
    return authenticated(regexMatcher(`spiffe://${quoteMeta(v.slice(0, star))}[^/]*${quoteMeta(v.slice(star + 1))}/.*`));
  },
};

const srcPrincipal: Generator<Principal> = { one: (_k, v) => authenticated(stringMatcher(v, 'spiffe://')) };

const MATCH_ANY = regexMatcher('.+');

/** `iss/sub` (split at the last `/`, an issuer may be a URL), with `*` on either end. */
const requestPrincipal: Generator<Principal> = {
  all: (key, values, tcp) => {
    if (tcp) return httpOnly(key);
    const or = values.map((value): Principal => {
      const idx = value.lastIndexOf('/');
      const found = idx >= 0;
      const [iss, sub] = found ? [value.slice(0, idx), value.slice(idx + 1)] : [value, ''];
      let mIss: envoy.type.matcher.v3.StringMatcher;
      let mSub: envoy.type.matcher.v3.StringMatcher;
      if (value === '*') [mIss, mSub] = [MATCH_ANY, MATCH_ANY];
      else if (value.startsWith('*')) {
        if (found) [mIss, mSub] = [iss === '*' ? MATCH_ANY : { suffix: iss.slice(1) }, { exact: sub }];
        else [mIss, mSub] = [MATCH_ANY, { suffix: value.slice(1) }];
      } else if (value.endsWith('*')) {
        if (found) [mIss, mSub] = [{ exact: iss }, sub === '*' ? MATCH_ANY : { prefix: sub.slice(0, -1) }];
        else [mIss, mSub] = [{ prefix: value.slice(0, -1) }, MATCH_ANY];
      } else [mIss, mSub] = [{ exact: iss }, { exact: sub }];
      return { and_ids: { ids: [{ metadata: jwtClaimString('iss', mIss) }, { metadata: jwtClaimString('sub', mSub) }] } };
    });
    return or.length === 1 ? or[0] : or.length ? { or_ids: { ids: or } } : undefined;
  },
};

function jwtClaim(claim: string): Generator<Principal> {
  return { all: (key, values, tcp) => (tcp ? httpOnly(key) : { metadata: jwtClaimListOrValue([claim], stringOrMatcher(values)) }) };
}

/** extractNameInBrackets: `[name]`. */
function nameInBrackets(s: string): string | undefined {
  return s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : undefined;
}

/** extractNameInNestedBrackets: `[a][b]` as [a, b]; anything else read as one `[name]`. */
function namesInNestedBrackets(s: string): string[] | undefined {
  const out: string[] = [];
  for (let begin = 0; begin < s.length;) {
    let end = -1;
    if (s[begin] === '[') {
      for (let i = begin + 1; i < s.length; i++) {
        if (s[i] === '[') break;
        if (s[i] === ']') {
          end = i;
          break;
        }
      }
    }
    if (end < 0) {
      const one = nameInBrackets(s);
      return one === undefined ? undefined : [one];
    }
    out.push(s.slice(begin + 1, end));
    begin = end + 1;
  }
  return out;
}

const requestHeader: Generator<Principal> = {
  one: (key, v, tcp) => {
    if (tcp) return httpOnly(key);
    const name = nameInBrackets(key.slice('request.headers'.length));
    return name === undefined ? { error: `expecting format [<NAME>], but found ${key}` } : { header: headerMatcher(name, v) };
  },
};

const requestClaims: Generator<Principal> = {
  all: (key, values, tcp) => {
    if (tcp) return httpOnly(key);
    const claims = namesInNestedBrackets(key.slice('request.auth.claims'.length));
    return claims === undefined ? { error: `expecting format [<NAME>], but found ${key}` } : { metadata: jwtClaimListOrValue(claims, stringOrMatcher(values)) };
  },
};

// ---- trust domain (MigrateTrustDomain with the mesh's bundle: trustDomain, then trustDomainAliases) -------

const prefixMatch = (a: string, pattern: string): boolean => pattern.endsWith('*') && a.startsWith(pattern.slice(0, -1));
const suffixMatch = (a: string, pattern: string): boolean => pattern.startsWith('*') && a.endsWith(pattern.slice(1));
const stringMatch = (a: string, list: readonly string[]): boolean =>
  list.some((s) => a === s || s === '*' || prefixMatch(a, s) || prefixMatch(s, a) || suffixMatch(a, s) || suffixMatch(s, a));

/**
 * ReplaceTrustDomainAliases: a principal `<td>/ns/<ns>/sa/<sa>` whose trust domain stands for one of the bundle
 * (or is `cluster.local`) becomes one principal per trust domain of the bundle, except where the bundle's domain
 * matches the principal's `*suffix` pattern, which is kept as written. Any other principal is kept.
 */
function replaceTrustDomainAliases(principals: readonly string[], bundle: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of principals) {
    const parts = p.split('/');
    const td = parts[0] ?? '';
    if (parts.length !== 5 || td === '*' || !(stringMatch(td, bundle) || td === 'cluster.local')) {
      out.push(p);
      continue;
    }
    const forAliases: string[] = [];
    for (const b of bundle) {
      const np = suffixMatch(b, td) ? p : [b, ...parts.slice(1)].join('/');
      if (!forAliases.includes(np)) forAliases.push(np);
    }
    out.push(...forAliases);
  }
  return out;
}

/** ExpandTrustDomainAliases: a value naming a domain of the bundle stands for all of them; duplicates dropped. */
function expandTrustDomainAliases(values: readonly string[], bundle: readonly string[]): string[] {
  return [...new Set(values.flatMap((v) => (bundle.includes(v) ? bundle : [v])))];
}

/**
 * MigrateTrustDomain, in place. A `when` condition is one object shared by every `from` of the rule (istiod's
 * ruleList.copy is shallow), so it is migrated once per `from`, as istiod does.
 */
function migrateTrustDomain(model: Model, bundle: readonly string[]): void {
  for (const list of model.principals) {
    for (const c of list) {
      if (c.key === 'source.principal') {
        if (c.values.length) c.values = replaceTrustDomainAliases(c.values, bundle);
        if (c.notValues.length) c.notValues = replaceTrustDomainAliases(c.notValues, bundle);
      } else if (c.key === 'source.trustDomain') {
        if (c.values.length) c.values = expandTrustDomainAliases(c.values, bundle);
        if (c.notValues.length) c.notValues = expandTrustDomainAliases(c.notValues, bundle);
      }
    }
  }
}

// ---- the model (model.go New) -------------------------------------------------------------------------

function condition<T>(key: string, values: readonly string[] | undefined, notValues: readonly string[] | undefined, gen: Generator<T>): Condition<T>[] {
  if (!values?.length && !notValues?.length) return [];
  return [{ key, values: values ?? [], notValues: notValues ?? [], gen }];
}

interface Model {
  permissions: Condition<Permission>[][];
  principals: Condition<Principal>[][];
}

/** model.New; undefined for a `when` key istiod does not know (validation refuses those first). */
function buildModel(policyNamespace: string, rule: Rule): Model | undefined {
  const basePermission: Condition<Permission>[] = [];
  const basePrincipal: Condition<Principal>[] = [];
  for (const w of rule.when ?? []) {
    const k = w.key ?? '';
    const perm = (g: Generator<Permission>): void => void basePermission.push(...condition(k, w.values, w.notValues, g));
    const prin = (g: Generator<Principal>): void => void basePrincipal.push(...condition(k, w.values, w.notValues, g));
    if (k === 'destination.ip') perm(destIP);
    else if (k === 'destination.port') perm(destPort);
    else if (k === 'connection.sni') perm(connSNI);
    else if (k.startsWith('experimental.envoy.filters.')) perm(envoyFilter);
    else if (k === 'source.ip') prin(srcIP);
    else if (k === 'remote.ip') prin(remoteIP);
    else if (k === 'source.namespace') prin(srcNamespace);
    else if (k === 'source.trustDomain') prin(srcTrustDomain);
    else if (k === 'source.serviceAccount') prin(serviceAccount(policyNamespace));
    else if (k === 'source.principal') prin(srcPrincipal);
    else if (k === 'request.auth.principal') prin(requestPrincipal);
    else if (k === 'request.auth.audiences') prin(jwtClaim('aud'));
    else if (k === 'request.auth.presenter') prin(jwtClaim('azp'));
    else if (k.startsWith('request.headers')) prin(requestHeader);
    else if (k.startsWith('request.auth.claims')) prin(requestClaims);
    else return undefined;
  }
  const principals = (rule.from?.length ? rule.from : [undefined]).map((from) => {
    const s = from?.source;
    if (!s) return [...basePrincipal];
    return [
      ...condition('source.principal', s.principals, s.notPrincipals, srcPrincipal),
      ...condition('request.auth.principal', s.requestPrincipals, s.notRequestPrincipals, requestPrincipal),
      ...condition('source.serviceAccount', s.serviceAccounts, s.notServiceAccounts, serviceAccount(policyNamespace)),
      ...condition('source.trustDomain', s.trustDomains, s.notTrustDomains, srcTrustDomain),
      ...condition('source.namespace', s.namespaces, s.notNamespaces, srcNamespace),
      ...condition('remote.ip', s.remoteIpBlocks, s.notRemoteIpBlocks, remoteIP),
      ...condition('source.ip', s.ipBlocks, s.notIpBlocks, srcIP),
      ...basePrincipal,
    ];
  });
  const permissions = (rule.to?.length ? rule.to : [undefined]).map((to) => {
    const o = to?.operation;
    if (!o) return [...basePermission];
    return [
      ...condition(':authority', o.hosts, o.notHosts, host),
      ...condition(':method', o.methods, o.notMethods, method),
      ...condition('path-matcher', o.paths, o.notPaths, path),
      ...condition('destination.port', o.ports, o.notPorts, destPort),
      ...basePermission,
    ];
  });
  return { permissions, principals };
}

// ---- generation (model.go Generate) -------------------------------------------------------------------

interface Combinators<T> {
  or(items: T[]): T;
  not(item: T): T;
}

const permissionOps: Combinators<Permission> = { or: (rules) => ({ or_rules: { rules } }), not: (not_rule) => ({ not_rule }) };
const principalOps: Combinators<Principal> = { or: (ids) => ({ or_ids: { ids } }), not: (not_id) => ({ not_id }) };

/**
 * A condition's matchers: values (OR-ed) and NOT notValues (OR-ed). A value that cannot be matched (an
 * HTTP-only field on a TCP chain, an unusable key) fails an ALLOW rule as a whole, which then allows less;
 * a DENY or AUDIT rule drops just that value, and so denies more (checkError).
 */
function conditionMatchers<T>(c: Condition<T>, ops: Combinators<T>, forTCP: boolean, action: AuthorizationAction): T[] | { error: string } {
  const out: T[] = [];
  const use = (o: Out<T>): T | undefined | { error: string } => (isError(o) ? (action === 'ALLOW' ? o : undefined) : o);
  for (const [values, negate] of [
    [c.values, false],
    [c.notValues, true],
  ] as const) {
    if (values.length === 0) continue;
    if (c.gen.all) {
      const m = use(c.gen.all(c.key, values, forTCP));
      if (isError(m)) return m;
      if (m !== undefined) out.push(negate ? ops.not(m) : m);
      continue;
    }
    const or: T[] = [];
    for (const v of values) {
      const m = use(c.gen.one?.(c.key, v, forTCP));
      if (isError(m)) return m;
      if (m !== undefined) or.push(m);
    }
    if (or.length) out.push(negate ? ops.not(ops.or(or)) : ops.or(or));
  }
  return out;
}

function generateAll<T>(list: readonly Condition<T>[], ops: Combinators<T>, forTCP: boolean, action: AuthorizationAction): T[] | { error: string } {
  const and: T[] = [];
  for (const c of list) {
    const m = conditionMatchers(c, ops, forTCP, action);
    if (!Array.isArray(m)) return m;
    and.push(...m);
  }
  return and;
}

/**
 * The RBAC Policy of one rule, for an HTTP or a TCP filter chain; an error when an ALLOW rule cannot be
 * expressed there (istiod skips the rule).
 */
export function rulePolicy(
  policyNamespace: string,
  rule: Rule,
  forTCP: boolean,
  action: AuthorizationAction,
  trustDomains: readonly string[] = [TRUST_DOMAIN],
): Policy | { error: string } {
  const model = buildModel(policyNamespace, rule);
  if (!model) return { error: 'unknown attribute' };
  migrateTrustDomain(model, trustDomains);
  const permissions: Permission[] = [];
  for (const list of model.permissions) {
    const and = generateAll(list, permissionOps, forTCP, action);
    if (!Array.isArray(and)) return and;
    permissions.push({ and_rules: { rules: and.length ? and : [{ any: true }] } });
  }
  const principals: Principal[] = [];
  for (const list of model.principals) {
    const and = generateAll(list, principalOps, forTCP, action);
    if (!Array.isArray(and)) return and;
    principals.push({ and_ids: { ids: and.length ? and : [{ any: true }] } });
  }
  return { permissions, principals };
}

/** A policy that matches nothing: what a policy without rules becomes (rbacPolicyMatchNever). */
export const MATCH_NEVER: Policy = { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] };
