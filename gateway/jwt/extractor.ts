// Where Envoy looks for JWTs in a request and how it takes them out again (jwt_authn/extractor.cc).
//
//   - Each provider names header locations (a header and a value prefix), query parameters and cookies; with
//     none of the three, its locations are `Authorization: Bearer <token>` and the `access_token` parameter.
//   - Locations shared by several providers are one location that accepts all their issuers (any issuer when
//     one of those providers has none). A token found there is rejected as "Jwt issuer is not configured"
//     unless its `iss` is one of them.
//   - Every location yields a token: headers first (in byte order of name + prefix), then parameters (in
//     byte order of name), then cookies (likewise). A header yields one token per value: with a prefix, the
//     value must contain the prefix somewhere, and the token starts at the first base64url character or '.'
//     after it and runs to the end of the value (the whole value when there is none); without a prefix, the
//     token is the whole value. A parameter yields its first value, percent-decoded; a cookie its value with
//     surrounding quotes removed. The same token found in two places is two tokens.
//   - Removing a token (forward: false): a header location removes the whole header; a parameter location
//     removes every value of the parameter and rewrites the query as Envoy's QueryParamsMulti prints it
//     (decoded names and values, sorted by name, `name=value` joined by '&'); a cookie stays.
//   - Before looking, a provider removes the headers it writes (forward_payload_header and claim_to_headers),
//     so a client cannot supply them.
import type { envoy } from '../../xds/envoy.ts';
import { wireString } from '../../xds/header-bytes.ts';
import { removeHeader } from '../../xds/header-list.ts';
import type { JwtRequest } from './request.ts';

type JwtProvider = envoy.extensions.filters.http.jwt_authn.v3.JwtProvider;

/** Which issuers a location accepts (Envoy JwtIssuerChecker). */
export class IssuerChecker {
  private allowAll = false;
  private readonly issuers = new Set<string>();

  add(issuer: string): void {
    if (issuer === '') this.allowAll = true;
    else this.issuers.add(issuer);
  }

  allows(iss: string): boolean {
    return this.allowAll || this.issuers.has(iss);
  }
}

/** A token and where it was found. */
export interface JwtLocation {
  token: string;
  issuers: IssuerChecker;
  /** The header it came from, or the query parameter; neither for a cookie. */
  header: string | undefined;
  param: string | undefined;
}

interface HeaderSpec {
  header: string;
  prefix: string;
  issuers: IssuerChecker;
}

/** ASCII lower case (Envoy LowerCaseString). */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// The characters a token may start with (RFC 4648 §5 plus '.').
const TOKEN_START = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.') TOKEN_START[c.charCodeAt(0)] = 1;

/** ExtractorImpl::extractJWT: from the first token character at or after `after` to the end; the value when none. */
function extractJwt(value: string, after: number): string {
  for (let i = after; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 128 && TOKEN_START[c] === 1) return value.slice(i);
  }
  return value;
}

/** Envoy PercentEncoding::decode: valid %XX sequences become their byte, anything else stays. */
export function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '%' && i + 2 < s.length) {
      const hex = s.slice(i + 1, i + 3);
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        out += String.fromCharCode(parseInt(hex, 16));
        i += 2;
        continue;
      }
    }
    out += c;
  }
  return out;
}

/** QueryParamsMulti::parseAndDecodeQueryString: decoded names to their decoded values, in order. */
export function parseQuery(path: string): Map<string, string[]> {
  const params = new Map<string, string[]>();
  const q = path.indexOf('?');
  if (q < 0) return params;
  let start = q + 1;
  while (start < path.length) {
    let end = path.indexOf('&', start);
    if (end < 0) end = path.length;
    const param = path.slice(start, end);
    const eq = param.indexOf('=');
    const name = percentDecode(eq < 0 ? param : param.slice(0, eq));
    const value = eq < 0 ? '' : percentDecode(param.slice(eq + 1));
    const vs = params.get(name);
    if (vs) vs.push(value);
    else params.set(name, [value]);
    start = end + 1;
  }
  return params;
}

/** JwtParamLocation::removeJwt: the path with every value of `name` removed and the query reprinted. */
export function removeQueryParam(path: string, name: string): string {
  const params = parseQuery(path);
  params.delete(name);
  const q = path.indexOf('?');
  const base = q < 0 ? path : path.slice(0, q);
  if (params.size === 0) return base;
  const parts: string[] = [];
  for (const k of [...params.keys()].sort(byteOrder)) for (const v of params.get(k) as string[]) parts.push(`${k}=${v}`);
  return `${base}?${parts.join('&')}`;
}

/** Http::Utility::parseCookies restricted to `names`: the first value of each, quotes removed. */
function parseCookies(headers: readonly string[], names: ReadonlyMap<string, unknown>): Map<string, string> {
  const cookies = new Map<string, string>();
  for (let h = 0; h < headers.length; h += 2) {
    if (headers[h] !== 'cookie') continue;
    for (const s of (headers[h + 1] ?? '').split(';')) {
      if (s === '') continue;
      const eq = s.indexOf('=');
      if (eq < 0) continue;
      let first = 0;
      while (first < s.length && s[first] === ' ') first++;
      const k = s.slice(first, eq);
      let v = s.slice(eq + 1);
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      if (names.has(k) && !cookies.has(k)) cookies.set(k, v);
    }
  }
  return cookies;
}

/**
 * The values of a header the way Envoy's header map holds them: one per occurrence, except `authorization`, an
 * inline header in Envoy's request header map, whose occurrences are one value joined with ','.
 */
function headerValues(headers: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) out.push(headers[i + 1] ?? '');
  return name === 'authorization' && out.length > 1 ? [out.join(',')] : out;
}

/** The extractor of one provider, or of every provider (for allow_missing and allow_missing_or_failed). */
export class Extractor {
  private readonly headerSpecs: HeaderSpec[] = [];
  private readonly params = new Map<string, IssuerChecker>();
  private readonly cookies = new Map<string, IssuerChecker>();
  private readonly sanitize: string[] = [];

  constructor(providers: readonly JwtProvider[]) {
    const headers = new Map<string, HeaderSpec>();
    const addHeader = (issuer: string, header: string, prefix: string): void => {
      const key = header + prefix;
      let spec = headers.get(key);
      if (!spec) headers.set(key, (spec = { header, prefix, issuers: new IssuerChecker() }));
      spec.issuers.add(issuer);
    };
    const add = (m: Map<string, IssuerChecker>, name: string, issuer: string): void => {
      let c = m.get(name);
      if (!c) m.set(name, (c = new IssuerChecker()));
      c.add(issuer);
    };
    for (const p of providers) {
      const issuer = p.issuer ?? '';
      for (const h of p.from_headers ?? []) addHeader(issuer, asciiLower(wireString(h.name ?? '')), wireString(h.value_prefix ?? ''));
      for (const name of p.from_params ?? []) add(this.params, wireString(name), issuer);
      for (const name of p.from_cookies ?? []) add(this.cookies, wireString(name), issuer);
      if (!p.from_headers?.length && !p.from_params?.length && !p.from_cookies?.length) {
        addHeader(issuer, 'authorization', 'Bearer ');
        add(this.params, 'access_token', issuer);
      }
      if (p.forward_payload_header) this.sanitize.push(asciiLower(wireString(p.forward_payload_header)));
      for (const c of p.claim_to_headers ?? []) this.sanitize.push(asciiLower(wireString(c.header_name ?? '')));
    }
    for (const key of [...headers.keys()].sort(byteOrder)) this.headerSpecs.push(headers.get(key) as HeaderSpec);
    sortMap(this.params);
    sortMap(this.cookies);
  }

  /** ExtractorImpl::sanitizeHeaders. */
  sanitizeHeaders(headers: string[]): void {
    for (const h of this.sanitize) removeHeader(headers, h);
  }

  /** ExtractorImpl::extract, in Envoy's order (the authenticator takes them from the end). */
  extract(req: JwtRequest): JwtLocation[] {
    const tokens: JwtLocation[] = [];
    for (const spec of this.headerSpecs) {
      for (const value of headerValues(req.headers, spec.header)) {
        let token = value;
        if (spec.prefix !== '') {
          const pos = value.indexOf(spec.prefix);
          if (pos < 0) continue;
          token = extractJwt(value, pos + spec.prefix.length);
        }
        tokens.push({ token, issuers: spec.issuers, header: spec.header, param: undefined });
      }
    }
    if (this.params.size > 0 && req.path !== '') {
      const query = parseQuery(req.path);
      for (const [name, issuers] of this.params) {
        const v = query.get(name);
        if (v !== undefined) tokens.push({ token: v[0] as string, issuers, header: undefined, param: name });
      }
    }
    if (this.cookies.size > 0) {
      const found = parseCookies(req.headers, this.cookies);
      for (const [name, issuers] of this.cookies) {
        const v = found.get(name);
        if (v !== undefined) tokens.push({ token: v, issuers, header: undefined, param: undefined });
      }
    }
    return tokens;
  }
}

function sortMap<V>(m: Map<string, V>): void {
  const entries = [...m.entries()].sort(([a], [b]) => byteOrder(a, b));
  m.clear();
  for (const [k, v] of entries) m.set(k, v);
}

/** JwtLocation::removeJwt. */
export function removeJwt(loc: JwtLocation, req: JwtRequest): void {
  if (loc.header !== undefined) removeHeader(req.headers, loc.header);
  else if (loc.param !== undefined && req.path !== '') req.path = removeQueryParam(req.path, loc.param);
}
