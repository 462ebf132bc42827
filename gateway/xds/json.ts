// What the proxy's parsers share besides the field tables (fields.ts): the error a resource that cannot be
// applied raises (collected into the NACK), the type name inside an Any, and RE2 compilation with the
// config's own location in its message. Parsers read the generated message types (xds/envoy.ts).

import { compileRe2 as compileRe2Pattern, isRe2Error, type Re2 } from '../../xds/re2.ts';

/** A JSON object whose shape is not known here (config_dump, admin output, worker messages). */
export type Json = { [k: string]: unknown };

/** A resource the proxy cannot apply: collected into the NACK's error_detail. */
export class ConfigError extends Error {}

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
