// Envoy's histograms: values recorded into log-linear bins and summarised at scrape time, with the arithmetic
// of the libcircllhist Envoy builds (commit 63a16dd, pinned in bazel/repository_locations.bzl), so quantiles,
// bucket counts and sums print exactly as Envoy's admin prints them.
//
// A recorded value is an integer (Envoy's Histogram::recordValue takes a uint64, milliseconds for timers) and
// lands in the bin of its first two significant digits: 7 in [7, 7.1), 123 in [120, 130), 0 in the zero bin.
// A bin is stored as one number, `exp * 100 + val` (val 10..99; 0 for the zero bin), so numeric order is the
// bins' order on the real axis.

/** Bin code -> count. */
export type Bins = Map<number, number>;

/** HistogramStatisticsImpl::supportedQuantiles. */
export const SUPPORTED_QUANTILES = [0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1];
/** HistogramSettingsImpl::defaultBuckets (milliseconds). */
export const DEFAULT_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

/** The bin of a recorded value (int_scale_to_hist_bucket(value, 0)); values are truncated to integers as Envoy's are. */
export function binOf(value: number): number {
  let v = Math.floor(value);
  if (!(v >= 1)) return 0;
  if (v < 10) return v * 10;
  let exp = 1;
  while (v >= 100) {
    v = Math.floor(v / 10);
    exp++;
  }
  return exp * 100 + v;
}

const POW10: number[] = [];
function pow10(exp: number): number {
  // The library's power_of_ten table holds the literals 1, 10, ... 1e+19: the correctly rounded doubles.
  return (POW10[exp] ??= Number(`1e${exp}`));
}

/** hist_bucket_to_double: the bin's lower bound. */
export function binLower(code: number): number {
  if (code === 0) return 0;
  const exp = Math.floor(code / 100);
  return ((code - exp * 100) / 10.0) * pow10(exp);
}

/** hist_bucket_to_double_bin_width. */
export function binWidth(code: number): number {
  if (code === 0) return 0;
  return pow10(Math.floor(code / 100)) / 10.0;
}

export function addBins(into: Bins, from: Bins): void {
  for (const [code, n] of from) into.set(code, (into.get(code) ?? 0) + n);
}

/** What Envoy's HistogramStatisticsImpl computes from one histogram (interval or cumulative). */
export interface HistogramStatistics {
  /** One per SUPPORTED_QUANTILES; NaN when the histogram is empty. */
  quantiles: number[];
  /** Samples whose whole bin lies at or below each of DEFAULT_BUCKETS (hist_approx_count_below). */
  buckets: number[];
  count: number;
  /** hist_approx_sum: each bin's midpoint times its count. */
  sum: number;
}

export function computeStatistics(bins: Bins | undefined): HistogramStatistics {
  const codes = bins ? [...bins.keys()].sort((a, b) => a - b) : [];
  const counts = codes.map((c) => (bins as Bins).get(c) ?? 0);
  let total = 0;
  for (const n of counts) total += n;
  let sum = 0;
  for (const [i, c] of codes.entries()) sum += (binLower(c) + binWidth(c) / 2.0) * (counts[i] ?? 0);
  const buckets = DEFAULT_BUCKETS.map((threshold) => {
    let running = 0;
    for (const [i, c] of codes.entries()) {
      if (binLower(c) + binWidth(c) <= threshold) running += counts[i] ?? 0;
      else break;
    }
    return running;
  });
  return { quantiles: approxQuantiles(codes, counts, total), buckets, count: total, sum };
}

/** hist_approx_quantile: the bin holding the q-th sample, linearly interpolated within it. */
function approxQuantiles(codes: number[], counts: number[], total: number): number[] {
  if (total === 0) return SUPPORTED_QUANTILES.map(() => NaN);
  const out: number[] = [];
  let i = 0;
  while (i < codes.length && (counts[i] ?? 0) === 0) i++;
  let width = binWidth(codes[i] ?? 0);
  let left = binLower(codes[i] ?? 0);
  let lower = 0;
  let upper = counts[i] ?? 0;
  for (const q of SUPPORTED_QUANTILES) {
    const qn = total * q;
    while (i < codes.length - 1 && upper < qn) {
      i++;
      width = binWidth(codes[i] ?? 0);
      left = binLower(codes[i] ?? 0);
      lower = upper;
      upper = lower + (counts[i] ?? 0);
    }
    if (lower === qn) out.push(left);
    else if (upper === qn) out.push(left + width);
    else if (width === 0) out.push(left);
    else out.push(left + ((qn - lower) / (upper - lower)) * width);
  }
  return out;
}

/** fmt's `{}` for a double (the shortest form that reads back), with C's `nan`. */
export function fmtShortest(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  return String(x);
}

/** C's `%.<precision>g`: significant digits, trailing zeros dropped, exponent of at least two digits. */
export function fmtG(x: number, precision: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === 0) return '0';
  // C picks the style from the exponent of the %e conversion at the same precision.
  const [mant = '', ex = '0'] = x.toExponential(precision - 1).split('e');
  const e = Number(ex);
  const trim = (t: string): string => (t.includes('.') ? t.replace(/0+$/, '').replace(/\.$/, '') : t);
  if (e < -4 || e >= precision) return `${trim(mant)}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  return trim(x.toFixed(precision - 1 - e));
}
