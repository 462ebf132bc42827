// Envoy's JWT authentication HTTP filter (envoy.filters.http.jwt_authn: source/extensions/filters/http/
// jwt_authn/{filter,filter_config,verifier,authenticator,jwks_cache}.cc) as a pure function of a request:
// what Istio's RequestAuthentication becomes on a gateway.
//
//   - A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) passes when
//     bypass_cors_preflight is set. Otherwise a route's PerRouteConfig decides (disabled, or a requirement of
//     requirement_map), else the first rule whose match matches; no rule (or a rule without requirement): the
//     request passes untouched.
//   - A requirement is a tree: provider_name / provider_and_audiences verify the tokens found at that
//     provider's locations (all of them must be valid, at least one must be there); requires_all fails with
//     its first failing child; requires_any passes with its first passing child, else fails with the last
//     failure that is neither "missing" nor "unknown issuer" (else "unknown issuer", else "missing");
//     allow_missing in a requires_any turns a "missing" result into a pass; allow_missing_or_failed any
//     result. Children run in order and stop early, and what a verified token does to the request (headers
//     added or removed, query rewritten, metadata) is done as it is verified, so later children see it.
//   - allow_missing / allow_missing_or_failed alone verify every token at every provider's locations, each
//     with the provider of its `iss` (the first with that issuer, else the first without one).
//   - A token is checked in Envoy's order: parse, issuer accepted at its location, time (nbf, then exp, with
//     clock_skew_seconds, 60 by default), audiences (any of the configured ones, ignoring an http:// or
//     https:// prefix and a trailing '/'; none configured: any), subjects, max_lifetime / require_expiration,
//     then the signature (jose, with the keys imported once per provider).
//   - Denied: 401 with the status text as body and `WWW-Authenticate: Bearer realm="<scheme>://<host><path
//     up to 256 chars>"` plus `, error="invalid_token"` unless the token was missing; 403 for audiences.
//     Response code details `jwt_authn_access_denied{<text, whitespace as '_'>}`. strip_failure_response:
//     an empty body and no WWW-Authenticate.
//
// Verified tokens are kept per provider, as Envoy does with jwt_cache_config; here always, which changes no
// outcome (every other check still runs on each use, and a local JWKS never changes, so a signature that
// verified once verifies again). remote_jwks is refused: istiod inlines the JWKS in local_jwks.
import type { envoy } from '../../xds/envoy.ts';
import { wireString } from '../../xds/header-bytes.ts';
import { firstHeaderValue, joinedHeaderValue } from '../../xds/header-list.ts';
import { compileStringMatcher, type StringMatch } from '../router/matchers.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { base64Encode, completePadding } from './base64.ts';
import { asciiLower, Extractor, removeJwt, type JwtLocation } from './extractor.ts';
import { parseJwks, verifySignature, type Jwks } from './jwks.ts';
import { printJson, setOwn, type JsonObject, type JsonValue } from './json.ts';
import { claimValue, parseJwt, verifyTimeConstraint, type Jwt } from './jwt.ts';
import { compileRuleMatch, type RuleMatch } from './matcher.ts';
import type { JwtRequest } from './request.ts';
import { Status, statusMessage } from './status.ts';

export type { JwtRequest } from './request.ts';

type JwtAuthentication = envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;
type JwtProvider = envoy.extensions.filters.http.jwt_authn.v3.JwtProvider;
type JwtRequirement = envoy.extensions.filters.http.jwt_authn.v3.JwtRequirement;
type PerRouteConfig = envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig;

export interface JwtResult {
  allowed: boolean;
  /** When denied: Envoy's local reply. 401, or 403 ("Audiences in Jwt are not allowed", a bad requirement_name). */
  status?: number;
  /** The reply body, e.g. 'Jwt is missing' ('' with strip_failure_response). */
  body?: string;
  /** Response code details, e.g. 'jwt_authn_access_denied{Jwt_is_missing}'. */
  details?: string;
  /** The WWW-Authenticate header of the reply, when Envoy sets one. */
  wwwAuthenticate?: string;
  /**
   * Dynamic metadata set under envoy.filters.http.jwt_authn (payload_in_metadata, header_in_metadata,
   * failed_status_in_metadata), {} when none. Envoy sets it whatever the outcome.
   */
  metadata: Record<string, unknown>;
  /** Envoy clears the route cache: a provider with clear_route_cache added a claim header or set payload metadata. */
  clearRouteCache: boolean;
}

/** A route's typed_per_filter_config for the filter (PerRouteConfig), parsed. */
export interface JwtPerRoute {
  disabled: boolean;
  requirementName: string;
}

export interface JwtFilterOptions {
  /** The clock, in milliseconds since the epoch (tests). */
  now?: () => number;
}

// ---- config ----

const checkAuthentication = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication', {
  providers: true,
  rules: true,
  filter_state_rules: 'no filter of this proxy sets filter state, so these requirements never apply (they are still validated)',
  bypass_cors_preflight: true,
  requirement_map: true,
  strip_failure_response: true,
});
const checkProvider = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.JwtProvider', {
  issuer: true,
  audiences: true,
  subjects: true,
  require_expiration: true,
  max_lifetime: true,
  local_jwks: true,
  forward: true,
  from_headers: true,
  from_params: true,
  from_cookies: true,
  forward_payload_header: true,
  pad_forward_payload_header: true,
  payload_in_metadata: true,
  normalize_payload_in_metadata: true,
  header_in_metadata: true,
  failed_status_in_metadata: true,
  clock_skew_seconds: true,
  jwt_cache_config: true,
  claim_to_headers: true,
  clear_route_cache: true,
});
const checkDataSource = fieldTable('envoy.config.core.v3.DataSource', { inline_string: true, inline_bytes: true }, 'jwt_authn JwtProvider.local_jwks');
const checkJwtHeader = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.JwtHeader', { name: true, value_prefix: true });
const checkClaimToHeader = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.JwtClaimToHeader', { header_name: true, claim_name: true });
const checkNormalize = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.JwtProvider.NormalizePayload', { space_delimited_claims: true });
const checkCacheConfig = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.JwtCacheConfig', { jwt_cache_size: true });
const checkRequirement = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.JwtRequirement', {
  provider_name: true,
  provider_and_audiences: true,
  requires_any: true,
  requires_all: true,
  allow_missing_or_failed: true,
  allow_missing: true,
});
const checkProviderWithAudiences = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.ProviderWithAudiences', { provider_name: true, audiences: true });
const checkOrList = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.JwtRequirementOrList', { requirements: true });
const checkAndList = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.JwtRequirementAndList', { requirements: true });
const checkRule = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.RequirementRule', { match: true, requires: true, requirement_name: true });
const checkFilterStateRule = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.FilterStateRule', { name: true, requires: true });
const checkPerRoute = fieldTable('envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig', { disabled: true, requirement_name: true });

/** PGV's non-strict HTTP header name/value rule: no NUL, CR or LF. */
function checkHeaderText(v: string, where: string): void {
  if (/[\0\r\n]/.test(v)) throw new ConfigError(`${where}: '${v}' must not contain NUL, CR or LF`);
}

/** jwt_verify CheckAudience: audiences compared without an http:// or https:// prefix and a trailing '/'. */
class CheckAudience {
  private readonly allowed: Set<string>;
  constructor(audiences: readonly string[]) {
    this.allowed = new Set(audiences.map(sanitizeAudience));
  }
  allows(jwtAudiences: readonly string[]): boolean {
    if (this.allowed.size === 0) return true;
    for (const a of jwtAudiences) if (this.allowed.has(sanitizeAudience(a))) return true;
    return false;
  }
}

function sanitizeAudience(aud: string): string {
  if (aud === '') return aud;
  let begin = 0;
  let end = aud.length;
  if (aud.startsWith('http://')) begin = 7;
  else if (aud.startsWith('https://')) begin = 8;
  if (aud.endsWith('/')) end--;
  return end <= begin ? '' : aud.slice(begin, end);
}

/** Verified tokens of one provider: its parsed form, the signature already checked against the provider's keys. */
class JwtCache {
  private readonly entries = new Map<string, Jwt>();
  private readonly size: number;
  constructor(size: number) {
    this.size = size;
  }
  lookup(token: string, nowSeconds: number): Jwt | undefined {
    const jwt = this.entries.get(token);
    if (jwt === undefined) return undefined;
    this.entries.delete(token);
    // Envoy drops an entry once it has expired (with the default 60 s of skew).
    if (verifyTimeConstraint(jwt, nowSeconds, 60) === Status.JwtExpired) return undefined;
    this.entries.set(token, jwt);
    return jwt;
  }
  insert(token: string, jwt: Jwt): void {
    // Envoy caches tokens of up to 4 KiB.
    if (token.length > 4096) return;
    this.entries.set(token, jwt);
    if (this.entries.size > this.size) this.entries.delete(this.entries.keys().next().value as string);
  }
}

interface ClaimHeader {
  header: string;
  claim: string;
}

/** A provider, compiled (Envoy JwksData plus the provider's config). */
interface Provider {
  name: string;
  issuer: string;
  audiences: CheckAudience;
  subjects: StringMatch | undefined;
  /** Milliseconds; Infinity for require_expiration; undefined when neither is set. */
  maxLifetimeMs: number | undefined;
  /** undefined when Envoy would not have installed the set (no valid key, or none given). */
  jwks: Jwks | undefined;
  clockSkew: number;
  forward: boolean;
  forwardPayloadHeader: string;
  padForwardPayloadHeader: boolean;
  payloadInMetadata: string;
  spaceDelimitedClaims: readonly string[];
  headerInMetadata: string;
  failedStatusInMetadata: string;
  claimToHeaders: readonly ClaimHeader[];
  clearRouteCache: boolean;
  cache: JwtCache;
  extractor: Extractor;
}

function durationMillis(d: string, where: string): number {
  const m = /^(-?\d+)(?:\.(\d{1,9}))?s$/.exec(d);
  if (!m) throw new ConfigError(`${where}: invalid duration '${d}'`);
  return Number(m[1]) * 1000 + Number(`0.${m[2] ?? '0'}`) * 1000 * (d.startsWith('-') ? -1 : 1);
}

function compileProvider(name: string, p: JwtProvider, where: string): Provider {
  if (p.remote_jwks !== undefined)
    throw new ConfigError(`${where}.remote_jwks: remote JWKS are not supported by this proxy (istiod inlines the JWKS in local_jwks by default)`);
  checkProvider(p, where);
  if (p.local_jwks === undefined) throw new ConfigError(`${where}: one of local_jwks, remote_jwks is required`);
  const ds = p.local_jwks;
  for (const f of ['filename', 'environment_variable', 'watched_directory'] as const)
    if (ds[f] !== undefined) throw new ConfigError(`${where}.local_jwks.${f}: only an inline JWKS (inline_string, inline_bytes) is supported by this proxy`);
  checkDataSource(ds, `${where}.local_jwks`);
  if (ds.inline_string !== undefined && ds.inline_bytes !== undefined) throw new ConfigError(`${where}.local_jwks: sets both inline_string and inline_bytes`);
  const text = ds.inline_bytes !== undefined ? Buffer.from(ds.inline_bytes, 'base64') : Buffer.from(ds.inline_string ?? '', 'utf8');
  // Envoy logs an invalid set and keeps none: every token of the provider then fails.
  let jwks: Jwks | undefined;
  if (text.length > 0) {
    const set = parseJwks(text);
    if (set.status === Status.Ok) jwks = set;
  }
  (p.from_headers ?? []).forEach((h, i) => {
    const w = `${where}.from_headers[${i}]`;
    checkJwtHeader(h, w);
    if (!h.name) throw new ConfigError(`${w}.name: must not be empty`);
    checkHeaderText(h.name, `${w}.name`);
    checkHeaderText(h.value_prefix ?? '', `${w}.value_prefix`);
  });
  const claimToHeaders = (p.claim_to_headers ?? []).map((c, i): ClaimHeader => {
    const w = `${where}.claim_to_headers[${i}]`;
    checkClaimToHeader(c, w);
    if (!c.header_name) throw new ConfigError(`${w}.header_name: must not be empty`);
    if (!c.claim_name) throw new ConfigError(`${w}.claim_name: must not be empty`);
    checkHeaderText(c.header_name, `${w}.header_name`);
    return { header: asciiLowerWire(c.header_name), claim: c.claim_name };
  });
  checkHeaderText(p.forward_payload_header ?? '', `${where}.forward_payload_header`);
  if (p.normalize_payload_in_metadata) checkNormalize(p.normalize_payload_in_metadata, `${where}.normalize_payload_in_metadata`);
  if (p.jwt_cache_config) checkCacheConfig(p.jwt_cache_config, `${where}.jwt_cache_config`);
  let maxLifetimeMs: number | undefined = p.require_expiration === true ? Infinity : undefined;
  if (p.max_lifetime !== undefined) maxLifetimeMs = durationMillis(p.max_lifetime, `${where}.max_lifetime`);
  const configuredCache = p.jwt_cache_config ? p.jwt_cache_config.jwt_cache_size || 100 : 0;
  return {
    name,
    issuer: p.issuer ?? '',
    audiences: new CheckAudience(p.audiences ?? []),
    subjects: p.subjects === undefined ? undefined : compileStringMatcher(p.subjects, `${where}.subjects`),
    maxLifetimeMs,
    jwks,
    clockSkew: p.clock_skew_seconds ? p.clock_skew_seconds : 60,
    forward: p.forward === true,
    forwardPayloadHeader: p.forward_payload_header ? asciiLowerWire(p.forward_payload_header) : '',
    padForwardPayloadHeader: p.pad_forward_payload_header === true,
    payloadInMetadata: p.payload_in_metadata ?? '',
    spaceDelimitedClaims: p.normalize_payload_in_metadata?.space_delimited_claims ?? [],
    headerInMetadata: p.header_in_metadata ?? '',
    failedStatusInMetadata: p.failed_status_in_metadata ?? '',
    claimToHeaders,
    clearRouteCache: p.clear_route_cache === true,
    cache: new JwtCache(Math.max(configuredCache, 1000)),
    extractor: new Extractor([p]),
  };
}

function asciiLowerWire(s: string): string {
  return asciiLower(wireString(s));
}

// ---- requirements ----

type Verifier =
  | { kind: 'provider'; provider: Provider; audiences: CheckAudience | undefined }
  /** allow_missing (allowFailed false) or allow_missing_or_failed, over every provider's locations. */
  | { kind: 'allow'; allowFailed: boolean }
  | { kind: 'any'; children: Verifier[]; allowMissingOrFailed: boolean; allowMissing: boolean }
  | { kind: 'all'; children: Verifier[] }
  | { kind: 'pass' };

const REQUIREMENT_KINDS = ['provider_name', 'provider_and_audiences', 'requires_any', 'requires_all', 'allow_missing_or_failed', 'allow_missing'] as const;

function requirementKind(r: JwtRequirement, where: string): (typeof REQUIREMENT_KINDS)[number] | undefined {
  checkRequirement(r, where);
  const set = REQUIREMENT_KINDS.filter((k) => r[k] !== undefined);
  if (set.length > 1) throw new ConfigError(`${where}: sets both '${set[0]}' and '${set[1]}'; at most one is allowed`);
  return set[0];
}

function emptyMessage(v: object, where: string): void {
  const keys = Object.keys(v).filter((k) => k !== '@type');
  if (keys.length > 0) throw new ConfigError(`${where}: field '${keys[0]}' is not supported by this proxy`);
}

class Compiler {
  private readonly providers: ReadonlyMap<string, Provider>;
  constructor(providers: ReadonlyMap<string, Provider>) {
    this.providers = providers;
  }

  private provider(name: string, where: string): Provider {
    const p = this.providers.get(name);
    if (p === undefined) throw new ConfigError(`${where}: Required provider ['${name}'] is not configured.`);
    return p;
  }

  private list(l: { requirements?: JwtRequirement[] } | undefined, where: string): JwtRequirement[] {
    const rs = l?.requirements ?? [];
    if (rs.length < 2) throw new ConfigError(`${where}.requirements: at least 2 requirements are required`);
    return rs;
  }

  /** Verifier::create (innerCreate). */
  compile(r: JwtRequirement, where: string): Verifier {
    switch (requirementKind(r, where)) {
      case undefined:
        return { kind: 'pass' };
      case 'provider_name':
        return { kind: 'provider', provider: this.provider(r.provider_name ?? '', `${where}.provider_name`), audiences: undefined };
      case 'provider_and_audiences': {
        const pa = r.provider_and_audiences ?? {};
        checkProviderWithAudiences(pa, `${where}.provider_and_audiences`);
        const provider = this.provider(pa.provider_name ?? '', `${where}.provider_and_audiences.provider_name`);
        const auds = pa.audiences ?? [];
        return { kind: 'provider', provider, audiences: auds.length > 0 ? new CheckAudience(auds) : undefined };
      }
      case 'allow_missing_or_failed':
        emptyMessage(r.allow_missing_or_failed ?? {}, `${where}.allow_missing_or_failed`);
        return { kind: 'allow', allowFailed: true };
      case 'allow_missing':
        emptyMessage(r.allow_missing ?? {}, `${where}.allow_missing`);
        return { kind: 'allow', allowFailed: false };
      case 'requires_all': {
        const w = `${where}.requires_all`;
        checkAndList(r.requires_all ?? {}, w);
        return { kind: 'all', children: this.list(r.requires_all, w).map((c, i) => this.compile(c, `${w}.requirements[${i}]`)) };
      }
      case 'requires_any': {
        const w = `${where}.requires_any`;
        checkOrList(r.requires_any ?? {}, w);
        const node: Verifier & { kind: 'any' } = { kind: 'any', children: [], allowMissingOrFailed: false, allowMissing: false };
        this.list(r.requires_any, w).forEach((c, i) => {
          const cw = `${w}.requirements[${i}]`;
          const kind = requirementKind(c, cw);
          if (kind === 'allow_missing_or_failed') {
            emptyMessage(c.allow_missing_or_failed ?? {}, `${cw}.allow_missing_or_failed`);
            node.allowMissingOrFailed = true;
          } else if (kind === 'allow_missing') {
            emptyMessage(c.allow_missing ?? {}, `${cw}.allow_missing`);
            node.allowMissing = true;
          } else node.children.push(this.compile(c, cw));
        });
        // Only allow_missing(_or_failed) entries: one child of that kind.
        if (node.children.length === 0) node.children.push({ kind: 'allow', allowFailed: node.allowMissingOrFailed });
        return node;
      }
    }
  }
}

// ---- verification ----

/** One request's verification state (Envoy's Verifier::Context). */
interface Context {
  req: JwtRequest;
  nowMs: number;
  nowSeconds: number;
  extracted: JsonObject;
  clearRouteCache: boolean;
}

/** convertClaimDoubleToString: an integer in [0, 2^64) as an integer, anything else as "%f". */
export function claimNumberString(x: number): string {
  if (x >= 0 && x < 2 ** 64 && Number.isInteger(x)) return BigInt(x).toString();
  return formatFixed6(x);
}

/** C's "%f" (six decimals, exact binary value rounded half to even). */
function formatFixed6(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const neg = x < 0 || Object.is(x, -0);
  const v = Math.abs(x);
  // v = mant * 2^exp exactly.
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, v);
  const bits = buf.getBigUint64(0);
  const e = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & 0xfffffffffffffn;
  let exp: number;
  if (e === 0) exp = -1074;
  else {
    mant |= 1n << 52n;
    exp = e - 1075;
  }
  let scaled: bigint;
  if (exp >= 0) scaled = (mant << BigInt(exp)) * 1000000n;
  else {
    const num = mant * 1000000n;
    const den = 1n << BigInt(-exp);
    scaled = num / den;
    const rem = num % den;
    if (rem * 2n > den || (rem * 2n === den && scaled % 2n === 1n)) scaled++;
  }
  const digits = scaled.toString().padStart(7, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -6)}.${digits.slice(-6)}`;
}

/** addJWTClaimToHeader: the header value for a claim, '' when it adds none. */
function claimHeaderValue(v: JsonValue | undefined): string {
  if (v === undefined || v === null) return '';
  switch (typeof v) {
    case 'string':
      return wireString(v);
    case 'number':
      return claimNumberString(v);
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      return base64Encode(Buffer.from(printJson(v), 'utf8'));
  }
}

export class JwtAuthnFilter {
  private readonly providers: Map<string, Provider>;
  /** The first provider of each issuer (Envoy's issuer map). */
  private readonly byIssuer = new Map<string, Provider>();
  private readonly allExtractor: Extractor;
  private readonly rules: { match: RuleMatch; verifier: Verifier | undefined }[];
  private readonly requirementMap: Map<string, Verifier>;
  private readonly requirementNames: string;
  private readonly bypassCorsPreflight: boolean;
  private readonly stripFailureResponse: boolean;
  private readonly now: () => number;

  constructor(cfg: JwtAuthentication, where: string, options: JwtFilterOptions = {}) {
    checkAuthentication(cfg, where);
    this.now = options.now ?? Date.now;
    this.providers = new Map();
    const providerConfigs: JwtProvider[] = [];
    for (const [name, p] of Object.entries(cfg.providers ?? {})) {
      const provider = compileProvider(name, p, `${where}.providers[${JSON.stringify(name)}]`);
      this.providers.set(name, provider);
      providerConfigs.push(p);
      if (!this.byIssuer.has(provider.issuer)) this.byIssuer.set(provider.issuer, provider);
    }
    this.allExtractor = new Extractor(providerConfigs);
    const compiler = new Compiler(this.providers);
    this.requirementMap = new Map();
    for (const [name, r] of Object.entries(cfg.requirement_map ?? {}))
      this.requirementMap.set(name, compiler.compile(r, `${where}.requirement_map[${JSON.stringify(name)}]`));
    this.requirementNames = [...this.requirementMap.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join(',');
    this.rules = (cfg.rules ?? []).map((rule, i) => {
      const w = `${where}.rules[${i}]`;
      checkRule(rule, w);
      if (rule.match === undefined) throw new ConfigError(`${w}.match: is required`);
      if (rule.requires !== undefined && rule.requirement_name !== undefined) throw new ConfigError(`${w}: sets both 'requires' and 'requirement_name'`);
      const match = compileRuleMatch(rule.match, `${w}.match`);
      let verifier: Verifier | undefined;
      if (rule.requires !== undefined) verifier = compiler.compile(rule.requires, `${w}.requires`);
      else if (rule.requirement_name !== undefined) {
        verifier = this.requirementMap.get(rule.requirement_name);
        if (verifier === undefined)
          throw new ConfigError(`${w}.requirement_name: Wrong requirement_name: ${rule.requirement_name}. It should be one of [${this.requirementNames}]`);
      }
      return { match, verifier };
    });
    if (cfg.filter_state_rules !== undefined) {
      const f = cfg.filter_state_rules;
      const w = `${where}.filter_state_rules`;
      checkFilterStateRule(f, w);
      if (!f.name) throw new ConfigError(`${w}.name: must not be empty`);
      for (const [k, r] of Object.entries(f.requires ?? {})) compiler.compile(r, `${w}.requires[${JSON.stringify(k)}]`);
    }
    this.bypassCorsPreflight = cfg.bypass_cors_preflight === true;
    this.stripFailureResponse = cfg.strip_failure_response === true;
  }

  /** JwksCache::findByIssuer: the first provider of that issuer, else (for a non-empty issuer) the first without one. */
  private findByIssuer(iss: string): Provider | undefined {
    const p = this.byIssuer.get(iss);
    if (p === undefined && iss !== '') return this.byIssuer.get('');
    return p;
  }

  /**
   * Envoy's decodeHeaders for one request. `scheme` and `authority` are :scheme and :authority (the realm of
   * WWW-Authenticate); `perRoute` the matched route's PerRouteConfig, when it has one.
   */
  async authenticate(req: JwtRequest, scheme: string, authority: string, perRoute?: JwtPerRoute): Promise<JwtResult> {
    if (this.bypassCorsPreflight && req.method === 'OPTIONS' && nonEmpty(req.headers, 'origin') && nonEmpty(req.headers, 'access-control-request-method'))
      return allowed({}, false);
    let verifier: Verifier | undefined;
    if (perRoute !== undefined) {
      if (perRoute.disabled) return allowed({}, false);
      verifier = this.requirementMap.get(perRoute.requirementName);
      if (verifier === undefined) {
        const msg = `Wrong requirement_name: ${perRoute.requirementName}. It should be one of [${this.requirementNames}]`;
        return {
          allowed: false,
          status: 403,
          body: this.stripFailureResponse ? '' : `Failed JWT authentication: ${msg}`,
          details: rcDetails(msg),
          metadata: {},
          clearRouteCache: false,
        };
      }
    } else {
      const mr = { method: req.method, path: req.path, authority, scheme, headers: req.headers };
      for (const rule of this.rules) {
        if (rule.match(mr)) {
          verifier = rule.verifier;
          break;
        }
      }
    }
    if (verifier === undefined) return allowed({}, false);

    const uri = originalUri(req, scheme, authority);
    const nowMs = this.now();
    const ctx: Context = { req, nowMs, nowSeconds: Math.floor(nowMs / 1000), extracted: {}, clearRouteCache: false };
    const status = await this.verify(verifier, ctx);
    if (status === Status.Ok) return allowed(ctx.extracted, ctx.clearRouteCache);
    const msg = statusMessage(status);
    return {
      allowed: false,
      status: status === Status.JwtAudienceNotAllowed ? 403 : 401,
      body: this.stripFailureResponse ? '' : msg,
      details: rcDetails(msg),
      wwwAuthenticate: this.stripFailureResponse ? undefined : `Bearer realm="${uri}"${status === Status.JwtMissed ? '' : ', error="invalid_token"'}`,
      metadata: ctx.extracted,
      clearRouteCache: ctx.clearRouteCache,
    };
  }

  private async verify(v: Verifier, ctx: Context): Promise<Status> {
    switch (v.kind) {
      case 'pass':
        return Status.Ok;
      case 'provider':
        v.provider.extractor.sanitizeHeaders(ctx.req.headers);
        return this.authenticateTokens(ctx, v.provider.extractor.extract(ctx.req), v.provider, v.audiences, false, false);
      case 'allow':
        this.allExtractor.sanitizeHeaders(ctx.req.headers);
        return this.authenticateTokens(ctx, this.allExtractor.extract(ctx.req), undefined, undefined, v.allowFailed, true);
      case 'all':
        for (const c of v.children) {
          const s = await this.verify(c, ctx);
          if (s !== Status.Ok) return s;
        }
        return Status.Ok;
      case 'any': {
        const statuses: Status[] = [];
        for (const c of v.children) {
          const s = await this.verify(c, ctx);
          if (s === Status.Ok) return s;
          statuses.push(s);
        }
        // The last failure that is neither "missing" nor "unknown issuer"; else "unknown issuer"; else "missing".
        let result: Status = Status.JwtMissed;
        for (const s of statuses) if ((s !== Status.JwtMissed && s !== Status.JwtUnknownIssuer) || result === Status.JwtMissed) result = s;
        if (v.allowMissingOrFailed) return Status.Ok;
        if (v.allowMissing && result === Status.JwtMissed) return Status.Ok;
        return result;
      }
    }
  }

  /**
   * The authenticator: the tokens from last to first. For a provider, every token must be valid (the first
   * failure ends it); for allow_missing(_or_failed), every token is tried and the last one's status counts.
   */
  private async authenticateTokens(
    ctx: Context,
    tokens: JwtLocation[],
    provider: Provider | undefined,
    audiences: CheckAudience | undefined,
    allowFailed: boolean,
    allowMissing: boolean,
  ): Promise<Status> {
    // Envoy's jwks_data_: the provider of the token being verified, kept from one token to the next.
    const state: { data: Provider | undefined } = { data: undefined };
    let status: Status = Status.JwtMissed;
    for (;;) {
      const cur = tokens.pop();
      if (cur !== undefined) status = await this.verifyToken(ctx, cur, provider, audiences, state);
      if (status !== Status.Ok) {
        const data = state.data ?? (this.providers.size === 1 ? this.providers.values().next().value : undefined);
        if (data !== undefined && data.failedStatusInMetadata !== '')
          setOwn(ctx.extracted, data.failedStatusInMetadata, { code: status, message: statusMessage(status) });
      }
      if ((status !== Status.Ok && !allowFailed && !allowMissing) || tokens.length === 0) break;
    }
    if (allowFailed) return Status.Ok;
    if (allowMissing && status === Status.JwtMissed) return Status.Ok;
    return status;
  }

  /** startVerify / verifyKey / handleGoodJwt for one token. */
  private async verifyToken(
    ctx: Context,
    cur: JwtLocation,
    provider: Provider | undefined,
    audiences: CheckAudience | undefined,
    state: { data: Provider | undefined },
  ): Promise<Status> {
    let jwt: Jwt | undefined;
    if (provider !== undefined) {
      state.data = provider;
      jwt = provider.cache.lookup(cur.token, ctx.nowSeconds);
    }
    const cached = jwt !== undefined;
    if (jwt === undefined) {
      const parsed = parseJwt(cur.token);
      if (typeof parsed === 'number') return parsed;
      jwt = parsed;
    }
    if (!cur.issuers.allows(jwt.iss)) return Status.JwtUnknownIssuer;
    if (provider === undefined) state.data = this.findByIssuer(jwt.iss);
    const data = state.data;
    if (data === undefined) return Status.JwtUnknownIssuer;
    const time = verifyTimeConstraint(jwt, ctx.nowSeconds, data.clockSkew);
    if (time !== Status.Ok) return time;
    if (!(audiences ?? data.audiences).allows(jwt.audiences)) return Status.JwtAudienceNotAllowed;
    if (data.subjects !== undefined && !data.subjects(wireString(jwt.sub))) return Status.JwtVerificationFail;
    if (data.maxLifetimeMs !== undefined && (jwt.exp === 0 || !(jwt.exp * 1000 - ctx.nowMs < data.maxLifetimeMs))) return Status.JwtVerificationFail;
    if (!cached && (provider !== undefined || data.cache.lookup(cur.token, ctx.nowSeconds) === undefined)) {
      if (data.jwks === undefined) return Status.JwksNoValidKeys;
      const s = await verifySignature(jwt, data.jwks);
      if (s !== Status.Ok) return s;
      data.cache.insert(cur.token, jwt);
    }
    this.handleGoodJwt(ctx, cur, jwt, data);
    return Status.Ok;
  }

  private handleGoodJwt(ctx: Context, cur: JwtLocation, jwt: Jwt, data: Provider): void {
    const headers = ctx.req.headers;
    if (data.forwardPayloadHeader !== '')
      headers.push(data.forwardPayloadHeader, data.padForwardPayloadHeader ? completePadding(jwt.payloadB64) : jwt.payloadB64);
    let added = false;
    for (const c of data.claimToHeaders) {
      const value = claimHeaderValue(claimValue(jwt.payload, c.claim));
      if (value !== '') {
        headers.push(c.header, value);
        added = true;
      }
    }
    if (data.clearRouteCache && (added || data.payloadInMetadata !== '')) ctx.clearRouteCache = true;
    if (!data.forward) removeJwt(cur, ctx.req);
    if (data.headerInMetadata !== '') setOwn(ctx.extracted, data.headerInMetadata, structuredClone(jwt.header));
    if (data.payloadInMetadata !== '') setOwn(ctx.extracted, data.payloadInMetadata, normalizedPayload(jwt.payload, data.spaceDelimitedClaims));
  }
}

/** setPayloadMetadata: a copy of the payload where each listed top-level string claim is split on ' ' into a list. */
function normalizedPayload(payload: JsonObject, claims: readonly string[]): JsonObject {
  const out = structuredClone(payload);
  for (const claim of claims) {
    const v = Object.hasOwn(payload, claim) ? payload[claim] : undefined;
    if (typeof v !== 'string') continue;
    const parts = v.split(' ').filter((s) => s !== '');
    if (parts.length === 0) continue;
    // Envoy appends to the list it made for an earlier mention of the same claim.
    const cur = out[claim];
    const list: JsonValue[] = Array.isArray(cur) ? cur : [];
    list.push(...parts);
    setOwn(out, claim, list);
  }
  return out;
}

function nonEmpty(headers: readonly string[], name: string): boolean {
  const v = joinedHeaderValue(headers, name);
  return v !== undefined && v !== '';
}

function allowed(metadata: JsonObject, clearRouteCache: boolean): JwtResult {
  return { allowed: true, metadata, clearRouteCache };
}

/** generateRcDetails. */
function rcDetails(msg: string): string {
  return `jwt_authn_access_denied{${msg.replace(/[ \t\n\v\f\r]/g, '_')}}`;
}

/** Http::Utility::buildOriginalUri with a 256-character path: '' without :path. */
function originalUri(req: JwtRequest, scheme: string, authority: string): string {
  if (req.path === '') return '';
  let path = firstHeaderValue(req.headers, 'x-envoy-original-path') ?? req.path;
  if (path.length > 256) path = path.slice(0, 256);
  return `${scheme}://${authority}${path}`;
}

/** extensions.filters.http.jwt_authn.v3.JwtAuthentication (the typed_config of envoy.filters.http.jwt_authn). */
export function parseJwtAuthn(cfg: JwtAuthentication, where: string, options?: JwtFilterOptions): JwtAuthnFilter {
  return new JwtAuthnFilter(cfg, where, options);
}

/** extensions.filters.http.jwt_authn.v3.PerRouteConfig (a route's typed_per_filter_config for the filter). */
export function parseJwtPerRoute(cfg: PerRouteConfig, where: string): JwtPerRoute {
  checkPerRoute(cfg, where);
  if (cfg.disabled !== undefined && cfg.requirement_name !== undefined) throw new ConfigError(`${where}: sets both 'disabled' and 'requirement_name'`);
  if (cfg.disabled !== undefined) {
    if (cfg.disabled !== true) throw new ConfigError(`${where}.disabled: must be true`);
    return { disabled: true, requirementName: '' };
  }
  if (!cfg.requirement_name) throw new ConfigError(`${where}: one of disabled, requirement_name is required`);
  return { disabled: false, requirementName: cfg.requirement_name };
}
