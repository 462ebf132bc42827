// Helpers for reading Envoy resources in their proto3 JSON form (what xds/protos.ts produces: proto field
// names, durations as "1.5s", int64 as strings, enums by name) and for validating them: every field the
// proxy does not implement and that would change behaviour is an error, so the resource is NACKed with a
// message that names it, instead of being silently ignored.

import { compileRe2 as compileRe2Pattern, isRe2Error, type Re2 } from '../../xds/re2.ts';
export type Json = { [k: string]: unknown };

/** A resource the proxy cannot apply: collected into the NACK's error_detail. */
export class ConfigError extends Error {}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: unknown, where: string): Json {
  if (v === undefined) return {};
  if (!isObject(v)) throw new ConfigError(`${where}: expected an object`);
  return v;
}

export function arr(v: unknown, where: string): Json[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new ConfigError(`${where}: expected a list`);
  return v.map((x, i) => obj(x, `${where}[${i}]`));
}

export function strArr(v: unknown, where: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ConfigError(`${where}: expected a list of strings`);
  return v as string[];
}

export function str(v: unknown, where: string, dflt = ''): string {
  if (v === undefined) return dflt;
  if (typeof v !== 'string') throw new ConfigError(`${where}: expected a string`);
  return v;
}

export function num(v: unknown, where: string, dflt = 0): number {
  if (v === undefined) return dflt;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  throw new ConfigError(`${where}: expected a number`);
}

export function bool(v: unknown, where: string, dflt = false): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new ConfigError(`${where}: expected a boolean`);
  return v;
}

/** google.protobuf.Duration JSON ("10s", "0.250s") to milliseconds; `dflt` when absent. */
export function durationMs(v: unknown, where: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !/^-?\d+(\.\d+)?s$/.test(v)) throw new ConfigError(`${where}: expected a duration like "1.5s"`);
  return Math.round(Number(v.slice(0, -1)) * 1000);
}

/**
 * Fails on any field not in `allowed`. `ignored` lists fields that are accepted but have no effect on what
 * this proxy does (documented no-ops such as stats or tracing knobs).
 */
export function checkFields(o: Json, where: string, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new ConfigError(`${where}: field '${k}' is not supported by this proxy`);
  }
}

/** The type name inside an Any's JSON ("@type": "type.googleapis.com/x.y.Z" -> "x.y.Z"). */
export function anyType(v: Json): string {
  const t = typeof v['@type'] === 'string' ? v['@type'] : '';
  return t.slice(t.lastIndexOf('/') + 1);
}

/**
 * An RE2 pattern (Envoy's safe_regex), compiled by xds/re2.ts: RE2's own syntax and linear-time matching,
 * since these patterns run against request paths and headers an attacker chooses. An invalid one is a config
 * error carrying RE2's message.
 */
export function compileRe2(src: string, where: string): Re2 {
  const re = compileRe2Pattern(src);
  if (isRe2Error(re)) throw new ConfigError(`${where}: invalid regex '${src}': ${re.message}`);
  return re;
}

/** type.matcher.v3.RegexMatcher JSON -> an RE2 matcher. */
export function regexMatcher(v: unknown, where: string): Re2 {
  const m = obj(v, where);
  checkFields(m, where, ['regex', 'google_re2']);
  return compileRe2(str(m.regex, `${where}.regex`), where);
}
