// Envoy's string, header and query-parameter matchers, compiled once per RouteConfiguration.
// Requests carry headers as a flat [name, value, ...] array with lowercase names (what both the node:http
// adapter and a raw HTTP/1 parser can produce cheaply), so nothing here depends on node:http.
import { int64, type envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { regexMatcher } from '../xds/regex-matcher.ts';
import { wireString } from '../../xds/header-bytes.ts';
import { joinedHeaderValue } from '../../xds/header-list.ts';

export type StringMatch = (value: string) => boolean;

const checkStringMatcher = fieldTable('envoy.type.matcher.v3.StringMatcher', {
  exact: true,
  prefix: true,
  suffix: true,
  contains: true,
  safe_regex: true,
  ignore_case: true,
});
const checkHeaderMatcher = fieldTable('envoy.config.route.v3.HeaderMatcher', {
  name: true,
  exact_match: true,
  safe_regex_match: true,
  range_match: true,
  present_match: true,
  prefix_match: true,
  suffix_match: true,
  contains_match: true,
  string_match: true,
  invert_match: true,
  treat_missing_header_as_empty: true,
});
const checkRange = fieldTable('envoy.type.v3.Int64Range', { start: true, end: true });
const checkQueryParameterMatcher = fieldTable('envoy.config.route.v3.QueryParameterMatcher', { name: true, string_match: true, present_match: true });

/** type.matcher.v3.StringMatcher. */
export function compileStringMatcher(m: envoy.type.matcher.v3.StringMatcher, where: string): StringMatch {
  checkStringMatcher(m, where);
  const ic = m.ignore_case === true;
  // Values from config compare as the bytes Envoy would compare (xds/header-bytes.ts).
  const norm = (s: string): string => wireString(ic ? s.toLowerCase() : s);
  if (m.exact !== undefined) {
    const e = norm(m.exact);
    return ic ? (s) => s.toLowerCase() === e : (s) => s === e;
  }
  if (m.prefix !== undefined) {
    const p = norm(m.prefix);
    return ic ? (s) => s.toLowerCase().startsWith(p) : (s) => s.startsWith(p);
  }
  if (m.suffix !== undefined) {
    const p = norm(m.suffix);
    return ic ? (s) => s.toLowerCase().endsWith(p) : (s) => s.endsWith(p);
  }
  if (m.contains !== undefined) {
    const p = norm(m.contains);
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
  /** The request's dynamic metadata (route dynamic_metadata matchers); absent before the HTTP filters ran. */
  metadata?(filter: string, path: readonly string[]): unknown;
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
export function compileHeaderMatcher(m: envoy.config.route.v3.HeaderMatcher, where: string): HeaderMatch {
  checkHeaderMatcher(m, where);
  const name = (m.name ?? '').toLowerCase();
  if (!name) throw new ConfigError(`${where}: header matcher without a name`);
  const invert = m.invert_match === true;
  const missingAsEmpty = m.treat_missing_header_as_empty === true;
  let test: ((value: string) => boolean) | undefined;
  let presence: boolean | undefined;
  if (m.exact_match !== undefined) {
    const e = wireString(m.exact_match);
    test = (s) => s === e;
  } else if (m.safe_regex_match !== undefined) {
    const re = regexMatcher(m.safe_regex_match, `${where}.safe_regex_match`);
    test = (s) => re.fullMatch(s);
  } else if (m.prefix_match !== undefined) {
    const p = wireString(m.prefix_match);
    test = (s) => s.startsWith(p);
  } else if (m.suffix_match !== undefined) {
    const p = wireString(m.suffix_match);
    test = (s) => s.endsWith(p);
  } else if (m.contains_match !== undefined) {
    const p = wireString(m.contains_match);
    test = (s) => s.includes(p);
  } else if (m.string_match !== undefined) {
    test = compileStringMatcher(m.string_match, `${where}.string_match`);
  } else if (m.range_match !== undefined) {
    const r = m.range_match;
    checkRange(r, `${where}.range_match`);
    const start = int64(r.start);
    const end = int64(r.end);
    test = (s) => {
      if (!/^-?\d+$/.test(s)) return false;
      const n = Number(s);
      return n >= start && n < end;
    };
  } else {
    // present_match (explicit, or the default when no match type is given: presence).
    presence = m.present_match ?? true;
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
export function compileQueryParameterMatcher(m: envoy.config.route.v3.QueryParameterMatcher, where: string): QueryMatch {
  checkQueryParameterMatcher(m, where);
  const name = m.name ?? '';
  if (m.string_match !== undefined) {
    const sm = compileStringMatcher(m.string_match, `${where}.string_match`);
    return (q) => {
      const val = q.get(name);
      return val !== null && sm(val);
    };
  }
  // present_match, or neither (Envoy treats that as "present" too).
  return (q) => q.has(name);
}
