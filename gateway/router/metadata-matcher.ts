// type.matcher.v3.MetadataMatcher and ValueMatcher over dynamic metadata (what RBAC's `metadata` permission
// and principal read, e.g. the JWT claims envoy.filters.http.jwt_authn leaves under `payload`), with Envoy's
// semantics (source/common/common/matchers.cc): the value at `path` is looked up in the filter's struct, a
// missing one being a Value with no kind; then
//   - string_match, double_match, bool_match, null_match match only a value of that kind;
//   - present_match: true matches any value that is there, false matches nothing;
//   - list_match.one_of matches a list with at least one element matching one_of;
//   - or_match matches when one of its matchers does;
//   - `invert` negates the result, so an inverted matcher matches a missing value.
// Metadata values are JSON-like: string, number, boolean, null, array (list) and plain object (struct).
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { wireString } from '../../xds/header-bytes.ts';
import { compileStringMatcher } from './matchers.ts';
import { exactlyOne } from '../rbac/oneof.ts';

type ValueMatch = (value: unknown) => boolean;

const checkMetadataMatcher = fieldTable('envoy.type.matcher.v3.MetadataMatcher', { filter: true, path: true, value: true, invert: true });
const checkPathSegment = fieldTable('envoy.type.matcher.v3.MetadataMatcher.PathSegment', { key: true });
const checkValueMatcher = fieldTable('envoy.type.matcher.v3.ValueMatcher', {
  null_match: true,
  double_match: true,
  string_match: true,
  bool_match: true,
  present_match: true,
  list_match: true,
  or_match: true,
});
const checkNullMatch = fieldTable('envoy.type.matcher.v3.ValueMatcher.NullMatch', {});
const checkListMatcher = fieldTable('envoy.type.matcher.v3.ListMatcher', { one_of: true });
const checkOrMatcher = fieldTable('envoy.type.matcher.v3.OrMatcher', { value_matchers: true });
const checkDoubleMatcher = fieldTable('envoy.type.matcher.v3.DoubleMatcher', { range: true, exact: true });
const checkDoubleRange = fieldTable('envoy.type.v3.DoubleRange', { start: true, end: true });

/** A proto3 JSON double: a number, or "NaN", "Infinity", "-Infinity" (or a numeric string). */
function double(v: number | string | undefined, where: string): number {
  if (v === undefined) return 0;
  const n = typeof v === 'number' ? v : Number(v);
  if (typeof v === 'string' && Number.isNaN(n) && v !== 'NaN') throw new ConfigError(`${where}: '${v}' is not a number`);
  return n;
}

/** type.matcher.v3.ValueMatcher. */
function compileValueMatcher(m: envoy.type.matcher.v3.ValueMatcher, where: string): ValueMatch {
  checkValueMatcher(m, where);
  const kind = exactlyOne(m, where, 'a value matcher');
  switch (kind) {
    case 'null_match':
      checkNullMatch(m.null_match ?? {}, `${where}.null_match`);
      return (v) => v === null;
    case 'double_match': {
      const d = m.double_match ?? {};
      const w = `${where}.double_match`;
      checkDoubleMatcher(d, w);
      const k = exactlyOne(d, w, 'a double matcher');
      if (k === 'exact') {
        const x = double(d.exact, `${w}.exact`);
        return (v) => typeof v === 'number' && v === x;
      }
      const r = d.range ?? {};
      checkDoubleRange(r, `${w}.range`);
      const start = double(r.start, `${w}.range.start`);
      const end = double(r.end, `${w}.range.end`);
      return (v) => typeof v === 'number' && start <= v && v < end;
    }
    case 'string_match': {
      const sm = compileStringMatcher(m.string_match ?? {}, `${where}.string_match`);
      // The matcher compares the bytes Envoy compares: a metadata string as UTF-8.
      return (v) => typeof v === 'string' && sm(wireString(v));
    }
    case 'bool_match': {
      const b = m.bool_match === true;
      return (v) => v === b;
    }
    case 'present_match':
      return m.present_match === true ? (v) => v !== undefined : () => false;
    case 'list_match': {
      const l = m.list_match ?? {};
      const w = `${where}.list_match`;
      checkListMatcher(l, w);
      if (l.one_of === undefined) throw new ConfigError(`${w}: one_of is required`);
      const one = compileValueMatcher(l.one_of, `${w}.one_of`);
      return (v) => {
        if (!Array.isArray(v)) return false;
        for (const e of v as unknown[]) if (one(e)) return true;
        return false;
      };
    }
    default: {
      const o = m.or_match ?? {};
      const w = `${where}.or_match`;
      checkOrMatcher(o, w);
      const list = o.value_matchers ?? [];
      if (list.length < 2) throw new ConfigError(`${w}.value_matchers: at least 2 matchers are required`);
      const ms = list.map((x, i) => compileValueMatcher(x, `${w}.value_matchers[${i}]`));
      return (v) => {
        for (const f of ms) if (f(v)) return true;
        return false;
      };
    }
  }
}

/** type.matcher.v3.MetadataMatcher over the request's dynamic metadata. */
/** What a metadata matcher reads: the request's dynamic metadata (RBAC requests, route matching). */
interface MetadataSource {
  metadata?(filter: string, path: readonly string[]): unknown;
}

export type MetadataMatch = (req: MetadataSource) => boolean;

export function compileMetadataMatcher(m: envoy.type.matcher.v3.MetadataMatcher, where: string): MetadataMatch {
  checkMetadataMatcher(m, where);
  const filter = m.filter ?? '';
  if (filter === '') throw new ConfigError(`${where}.filter: must not be empty`);
  const segments = m.path ?? [];
  if (segments.length === 0) throw new ConfigError(`${where}.path: at least one key is required`);
  const path = segments.map((s, i) => {
    checkPathSegment(s, `${where}.path[${i}]`);
    if (!s.key) throw new ConfigError(`${where}.path[${i}].key: must not be empty`);
    return s.key;
  });
  if (m.value === undefined) throw new ConfigError(`${where}.value: is required`);
  const value = compileValueMatcher(m.value, `${where}.value`);
  const invert = m.invert === true;
  return (req) => value(req.metadata?.(filter, path)) !== invert;
}

function isStruct(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Envoy Config::Metadata::metadataValue: the value at `path` in a filter's metadata struct, each step taken
 * in a struct only; undefined (a Value with no kind) when a key is missing or a step is not a struct.
 */
export function metadataValue(struct: unknown, path: readonly string[]): unknown {
  if (path.length === 0) return undefined;
  let cur: unknown = struct;
  for (const key of path) {
    if (!isStruct(cur) || !Object.hasOwn(cur, key)) return undefined;
    cur = cur[key];
  }
  return cur;
}
