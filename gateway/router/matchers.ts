// Envoy's string, header and query-parameter matchers, compiled once per RouteConfiguration.
// Requests carry headers as a flat [name, value, ...] array with lowercase names (what both the node:http
// adapter and a raw HTTP/1 parser can produce cheaply), so nothing here depends on node:http.
import { ConfigError, bool, checkFields, num, obj, regexMatcher, str, type Json } from '../xds/json.ts';
import { wireString } from '../../xds/header-bytes.ts';
import { joinedHeaderValue } from '../../xds/header-list.ts';

export type StringMatch = (value: string) => boolean;

/** type.matcher.v3.StringMatcher. */
export function compileStringMatcher(v: unknown, where: string): StringMatch {
  const m = obj(v, where);
  checkFields(m, where, ['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'ignore_case']);
  const ic = bool(m.ignore_case, `${where}.ignore_case`);
  // Values from config compare as the bytes Envoy would compare (xds/header-bytes.ts).
  const norm = (s: string): string => wireString(ic ? s.toLowerCase() : s);
  if (m.exact !== undefined) {
    const e = norm(str(m.exact, `${where}.exact`));
    return ic ? (s) => s.toLowerCase() === e : (s) => s === e;
  }
  if (m.prefix !== undefined) {
    const p = norm(str(m.prefix, `${where}.prefix`));
    return ic ? (s) => s.toLowerCase().startsWith(p) : (s) => s.startsWith(p);
  }
  if (m.suffix !== undefined) {
    const p = norm(str(m.suffix, `${where}.suffix`));
    return ic ? (s) => s.toLowerCase().endsWith(p) : (s) => s.endsWith(p);
  }
  if (m.contains !== undefined) {
    const p = norm(str(m.contains, `${where}.contains`));
    return ic ? (s) => s.toLowerCase().includes(p) : (s) => s.includes(p);
  }
  if (m.safe_regex !== undefined) {
    if (ic) throw new ConfigError(`${where}: ignore_case has no effect for safe_regex`);
    const re = regexMatcher(m.safe_regex, `${where}.safe_regex`);
    return (s) => re.fullMatch(s);
  }
  throw new ConfigError(`${where}: a string matcher needs one of exact, prefix, suffix, contains, safe_regex`);
}

export interface MatchRequest {
  method: string;
  authority: string;
  /** :path as received (with query). */
  path: string;
  scheme: string;
  headers: readonly string[];
}

export type HeaderMatch = (req: MatchRequest) => boolean;

/**
 * The value a header matcher sees: every value joined with ',' (xds/header-list.ts); pseudo-headers
 * (:authority, :method, :path, :scheme) come from the request line.
 */
function pseudo(req: MatchRequest, name: string): string | undefined {
  switch (name) {
    case ':authority':
    case 'host':
      return req.authority;
    case ':method':
      return req.method;
    case ':path':
      return req.path;
    case ':scheme':
      return req.scheme;
    default:
      return joinedHeaderValue(req.headers, name);
  }
}

/** config.route.v3.HeaderMatcher (Envoy HeaderUtility::matchHeaders semantics). */
export function compileHeaderMatcher(v: unknown, where: string): HeaderMatch {
  const m = obj(v, where);
  checkFields(m, where, [
    'name',
    'exact_match',
    'safe_regex_match',
    'range_match',
    'present_match',
    'prefix_match',
    'suffix_match',
    'contains_match',
    'string_match',
    'invert_match',
    'treat_missing_header_as_empty',
  ]);
  const name = str(m.name, `${where}.name`).toLowerCase();
  if (!name) throw new ConfigError(`${where}: header matcher without a name`);
  const invert = bool(m.invert_match, `${where}.invert_match`);
  const missingAsEmpty = bool(m.treat_missing_header_as_empty, `${where}.treat_missing_header_as_empty`);
  let test: ((value: string) => boolean) | undefined;
  let presence: boolean | undefined;
  if (m.exact_match !== undefined) {
    const e = wireString(str(m.exact_match, where));
    test = (s) => s === e;
  } else if (m.safe_regex_match !== undefined) {
    const re = regexMatcher(m.safe_regex_match, `${where}.safe_regex_match`);
    test = (s) => re.fullMatch(s);
  } else if (m.prefix_match !== undefined) {
    const p = wireString(str(m.prefix_match, where));
    test = (s) => s.startsWith(p);
  } else if (m.suffix_match !== undefined) {
    const p = wireString(str(m.suffix_match, where));
    test = (s) => s.endsWith(p);
  } else if (m.contains_match !== undefined) {
    const p = wireString(str(m.contains_match, where));
    test = (s) => s.includes(p);
  } else if (m.string_match !== undefined) {
    test = compileStringMatcher(m.string_match, `${where}.string_match`);
  } else if (m.range_match !== undefined) {
    const r = obj(m.range_match, `${where}.range_match`);
    const start = num(r.start, `${where}.range_match.start`);
    const end = num(r.end, `${where}.range_match.end`);
    test = (s) => {
      if (!/^-?\d+$/.test(s)) return false;
      const n = Number(s);
      return n >= start && n < end;
    };
  } else {
    // present_match (explicit, or the default when no match type is given: presence).
    presence = m.present_match === undefined ? true : bool(m.present_match, `${where}.present_match`);
  }
  const t = test;
  if (t === undefined) {
    const want = presence ?? true;
    return (req) => ((pseudo(req, name) !== undefined) === want) !== invert;
  }
  return (req) => {
    let value = pseudo(req, name);
    if (value === undefined) {
      if (!missingAsEmpty) return false;
      value = '';
    }
    return t(value) !== invert;
  };
}

export type QueryMatch = (query: URLSearchParams) => boolean;

/** config.route.v3.QueryParameterMatcher. */
export function compileQueryParameterMatcher(v: unknown, where: string): QueryMatch {
  const m = obj(v, where);
  checkFields(m, where, ['name', 'string_match', 'present_match']);
  const name = str(m.name, `${where}.name`);
  if (m.string_match !== undefined) {
    const sm = compileStringMatcher(m.string_match, `${where}.string_match`);
    return (q) => {
      const val = q.get(name);
      return val !== null && sm(val);
    };
  }
  if (bool(m.present_match, `${where}.present_match`)) return (q) => q.has(name);
  // Neither: Envoy treats this as "present" too.
  return (q) => q.has(name);
}

export type { Json };
