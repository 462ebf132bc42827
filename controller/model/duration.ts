// Durations as they appear in Istio resources (Go time.ParseDuration syntax, which istio's API accepts:
// "1h", "3m", "0.5s", "100ms") and as Envoy's proto3 JSON prints them ("180s", "0.500s").
import type { Duration } from '../../xds/envoy.ts';

const UNITS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Parses a Go/proto duration into nanoseconds; undefined when it is not one. */
export function parseDuration(s: unknown): number | undefined {
  if (typeof s === 'number' && Number.isFinite(s) && s >= 0) return s * 1e9;
  if (typeof s !== 'string' || s === '') return undefined;
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let i = 0;
  while (i < s.length) {
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * (UNITS[m[2] ?? ''] ?? NaN);
    i = re.lastIndex;
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/** Nanoseconds -> Envoy JSON duration ("10s", "0.500s"). */
export function envoyDuration(ns: number): Duration {
  const sec = Math.floor(ns / 1e9);
  const frac = ns - sec * 1e9;
  if (frac === 0) return `${sec}s`;
  // Whole seconds, a point and the nanoseconds without trailing zeros: a decimal number of seconds.
  return `${sec}.${String(frac).padStart(9, '0').replace(/0+$/, '')}s` as Duration;
}

/** Istio duration string -> Envoy duration string (undefined when absent or malformed). */
export function toEnvoyDuration(s: unknown): Duration | undefined {
  const ns = parseDuration(s);
  return ns === undefined ? undefined : envoyDuration(ns);
}

/** Whole seconds of a duration (CORS maxAge is sent as a decimal string of seconds). */
export function durationSeconds(s: unknown): number | undefined {
  const ns = parseDuration(s);
  return ns === undefined ? undefined : Math.floor(ns / 1e9);
}
