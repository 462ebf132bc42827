// envoy.type.v3.FractionalPercent and RuntimeFractionalPercent: "numerator out of HUNDRED / TEN_THOUSAND /
// MILLION", compiled to a probability once per config. Envoy draws a random integer in [0, denominator) and
// compares it with the numerator (ProtobufPercentHelper / Runtime featureEnabled); a uniform float is the
// same distribution.
import { ConfigError, checkFields, num, obj, str } from '../xds/json.ts';

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** FractionalPercent -> probability in [0, 1]. Absent: `dflt`. Numerators above the denominator mean 100%. */
export function compileFractionalPercent(v: unknown, where: string, dflt: number): number {
  if (v === undefined) return dflt;
  const f = obj(v, where);
  checkFields(f, where, ['numerator', 'denominator']);
  const d = DENOMINATORS[str(f.denominator, `${where}.denominator`, 'HUNDRED')];
  if (d === undefined) throw new ConfigError(`${where}.denominator: unknown value ${String(f.denominator)}`);
  return Math.min(1, num(f.numerator, `${where}.numerator`) / d);
}

/** RuntimeFractionalPercent (no runtime layer here: the default value applies). */
export function compileRuntimeFraction(v: unknown, where: string, dflt: number): number {
  if (v === undefined) return dflt;
  const r = obj(v, where);
  checkFields(r, where, ['default_value', 'runtime_key']);
  return compileFractionalPercent(r.default_value, `${where}.default_value`, 0);
}

/** True with probability `p` (exactly 0 never, exactly 1 always). */
export function sample(p: number, random: () => number = Math.random): boolean {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return random() < p;
}
