// envoy.type.v3.FractionalPercent and RuntimeFractionalPercent: "numerator out of HUNDRED / TEN_THOUSAND /
// MILLION", compiled to a probability once per config. Envoy draws a random integer in [0, denominator) and
// compares it with the numerator (ProtobufPercentHelper / Runtime featureEnabled); a uniform float is the
// same distribution.
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

const checkFractionalPercent = fieldTable('envoy.type.v3.FractionalPercent', { numerator: true, denominator: true });
const checkRuntimeFraction = fieldTable('envoy.config.core.v3.RuntimeFractionalPercent', {
  default_value: true,
  runtime_key: 'there is no runtime layer here: the default_value always applies',
});

/** FractionalPercent -> probability in [0, 1]. Absent: `dflt`. Numerators above the denominator mean 100%. */
export function compileFractionalPercent(f: envoy.type.v3.FractionalPercent | undefined, where: string, dflt: number): number {
  if (f === undefined) return dflt;
  checkFractionalPercent(f, where);
  const d = DENOMINATORS[f.denominator ?? 'HUNDRED'];
  if (d === undefined) throw new ConfigError(`${where}.denominator: unknown value ${String(f.denominator)}`);
  return Math.min(1, (f.numerator ?? 0) / d);
}

/** RuntimeFractionalPercent (no runtime layer here: the default value applies). */
export function compileRuntimeFraction(r: envoy.config.core.v3.RuntimeFractionalPercent | undefined, where: string, dflt: number): number {
  if (r === undefined) return dflt;
  checkRuntimeFraction(r, where);
  return compileFractionalPercent(r.default_value, `${where}.default_value`, 0);
}

/** True with probability `p` (exactly 0 never, exactly 1 always). */
export function sample(p: number, random: () => number = Math.random): boolean {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return random() < p;
}
