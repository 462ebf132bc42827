// Envoy-style stats: counters and gauges held in typed arrays and addressed by indices that components
// resolve once per config (a cluster, a listener, an HCM), never per request. A request does
// `store.values[idx] += 1` and nothing else. Names follow Envoy (`cluster.<alt_stat_name>.upstream_rq_total`,
// `http.<stat_prefix>.downstream_rq_2xx`, ...); rendering (/stats, Prometheus) happens at scrape time.
//
// Histograms (Envoy's ParentHistogram) share the index space: a request records one value with
// `store.record(idx, ms)` into the thread's pending bins; every stats flush (Envoy's stats_flush_interval)
// the main thread gathers every thread's pending bins into the histogram's interval and cumulative bins
// (mergeHistograms), which is what /stats and Prometheus show, as Envoy's admin does.
//
// Names are reference counted like Envoy's stat scopes: a cluster that is modified keeps the same stat
// names (and values) because the new cluster acquires them before the old one releases them; a removed
// cluster's stats disappear from /stats, as they do in Envoy when the scope is destroyed.

import { addBins, binOf, computeStatistics, type Bins, type HistogramStatistics } from './histogram.ts';

export const COUNTER = 0;
export const GAUGE = 1;
export const HISTOGRAM = 2;
/**
 * A histogram Envoy creates on first use (the router's cluster.<name>.upstream_rq_time): held like the others,
 * shown only once a flush merged values into it.
 */
const DYNAMIC_HISTOGRAM = 3;
export type StatKind = typeof COUNTER | typeof GAUGE | typeof HISTOGRAM;

/** One histogram's state: its values since the last flush, and (main thread) what the flushes merged. */
interface HistogramState {
  pending: Bins | undefined;
  interval: Bins | undefined;
  cumulative: Bins | undefined;
  /** ParentHistogramImpl::merged_: a flush found values once (Envoy's used()). */
  merged: boolean;
  /** The statistics the last flush computed (Envoy refreshes them at merge time, not per scrape). */
  sample: HistogramSample | undefined;
}

/**
 * A stat created with explicit tags (Envoy's StatNameTagVector, as Istio's stats filter makes them): the
 * tag-extracted name and the tags, in order. Prometheus shows these as they are instead of applying the
 * bootstrap's tag extraction rules to the full name.
 */
export interface StatTags {
  name: string;
  tags: readonly (readonly [string, string])[];
}

/** A worker's histogram values since the last flush: name, bin codes, counts (and the tags of a tagged histogram). */
export type HistogramDelta = [string, number[], number[]] | [string, number[], number[], StatTags];

const INITIAL = 1024;

export class StatsStore {
  /** Values by index. Replaced (grown) when full, so read it through the store on every access. */
  values = new Float64Array(INITIAL);
  /** 1 once a stat has been written (Envoy's "used" flag, for `?usedonly`). */
  used = new Uint8Array(INITIAL);
  private kinds = new Uint8Array(INITIAL);
  private refs = new Int32Array(INITIAL);
  private names: (string | undefined)[] = [];
  private byName = new Map<string, number>();
  private free: number[] = [];
  /** Gauges whose value is computed at scrape time (server.uptime, membership counts...). */
  private computed = new Map<number, () => number>();
  private hists: (HistogramState | undefined)[] = [];
  private tagged = new Map<number, StatTags>();

  /** Acquires (creating if needed) a stat and returns its index. Pair with release(). */
  acquire(name: string, kind: StatKind | typeof DYNAMIC_HISTOGRAM): number {
    const existing = this.byName.get(name);
    if (existing !== undefined) {
      this.refs[existing] = (this.refs[existing] ?? 0) + 1;
      return existing;
    }
    let idx = this.free.pop();
    if (idx === undefined) {
      idx = this.names.length;
      if (idx >= this.values.length) this.grow();
      this.names.push(name);
    } else this.names[idx] = name;
    this.byName.set(name, idx);
    this.kinds[idx] = kind;
    this.refs[idx] = 1;
    this.values[idx] = 0;
    this.used[idx] = 0;
    this.hists[idx] = undefined;
    return idx;
  }

  counter(name: string): number {
    return this.acquire(name, COUNTER);
  }

  gauge(name: string): number {
    return this.acquire(name, GAUGE);
  }

  histogram(name: string): number {
    return this.acquire(name, HISTOGRAM);
  }

  /** A histogram that appears in /stats only once values were recorded (Envoy creates it on first use). */
  dynamicHistogram(name: string): number {
    return this.acquire(name, DYNAMIC_HISTOGRAM);
  }

  /**
   * A stat with explicit tags (never released: Envoy keeps Istio's stats for the life of their scope, one series
   * per distinct tag set). `kind` HISTOGRAM makes a histogram shown once values were recorded.
   */
  taggedStat(name: string, kind: StatKind, tags: StatTags): number {
    const idx = this.acquire(name, kind === HISTOGRAM ? DYNAMIC_HISTOGRAM : kind);
    this.tagged.set(idx, tags);
    return idx;
  }

  /** A gauge read from `fn` when stats are rendered. */
  computedGauge(name: string, fn: () => number): number {
    const idx = this.acquire(name, GAUGE);
    this.computed.set(idx, fn);
    return idx;
  }

  release(idx: number): void {
    const r = (this.refs[idx] ?? 0) - 1;
    this.refs[idx] = r;
    if (r > 0) return;
    const name = this.names[idx];
    if (name !== undefined) this.byName.delete(name);
    this.names[idx] = undefined;
    this.computed.delete(idx);
    this.tagged.delete(idx);
    this.hists[idx] = undefined;
    this.values[idx] = 0;
    this.used[idx] = 0;
    this.free.push(idx);
  }

  inc(idx: number, by = 1): void {
    this.values[idx] = (this.values[idx] ?? 0) + by;
    this.used[idx] = 1;
  }

  dec(idx: number): void {
    this.values[idx] = (this.values[idx] ?? 0) - 1;
    this.used[idx] = 1;
  }

  set(idx: number, v: number): void {
    this.values[idx] = v;
    this.used[idx] = 1;
  }

  /** Records one value (milliseconds, truncated as Envoy's timers are) into a histogram. */
  record(idx: number, value: number): void {
    let h = this.hists[idx];
    if (h === undefined) {
      if (this.names[idx] === undefined) return;
      h = this.hists[idx] = { pending: undefined, interval: undefined, cumulative: undefined, merged: false, sample: undefined };
    }
    const bins = (h.pending ??= new Map<number, number>());
    const code = binOf(value);
    bins.set(code, (bins.get(code) ?? 0) + 1);
  }

  /** This thread's values since the last flush, by histogram name; the pending bins are cleared. */
  takeHistogramDeltas(): HistogramDelta[] {
    const out: HistogramDelta[] = [];
    for (const [idx, h] of this.hists.entries()) {
      const name = this.names[idx];
      if (!h?.pending || h.pending.size === 0 || name === undefined) continue;
      const tags = this.tagged.get(idx);
      out.push(tags ? [name, [...h.pending.keys()], [...h.pending.values()], tags] : [name, [...h.pending.keys()], [...h.pending.values()]]);
      h.pending.clear();
    }
    return out;
  }

  /**
   * Envoy's mergeHistograms (each stats flush, main thread): this thread's pending values and the workers'
   * become each histogram's interval, added to its cumulative values. A histogram never recorded stays
   * unmerged ("No recorded values"). Values for a histogram this store does not hold are dropped.
   */
  mergeHistograms(workers: HistogramDelta[][] = []): void {
    const incoming = new Map<number, Bins>();
    for (const [idx, h] of this.hists.entries()) {
      if (h?.pending && h.pending.size > 0) {
        incoming.set(idx, h.pending);
        h.pending = undefined;
      }
    }
    for (const list of workers) {
      for (const [name, codes, counts, tags] of list) {
        // A tagged histogram only a worker has recorded yet: the main thread's store creates it, as Envoy's
        // parent histogram exists for every thread-local one.
        const idx = this.byName.get(name) ?? (tags ? this.taggedStat(name, HISTOGRAM, tags) : undefined);
        if (idx === undefined || !isHistogramKind(this.kinds[idx])) continue;
        let bins = incoming.get(idx);
        if (!bins) incoming.set(idx, (bins = new Map<number, number>()));
        for (const [i, code] of codes.entries()) bins.set(code, (bins.get(code) ?? 0) + (counts[i] ?? 0));
      }
    }
    for (let idx = 0; idx < this.names.length; idx++) {
      if (this.names[idx] === undefined || !isHistogramKind(this.kinds[idx])) continue;
      const bins = incoming.get(idx);
      let h = this.hists[idx];
      if (!h) {
        if (!bins) continue;
        h = this.hists[idx] = { pending: undefined, interval: undefined, cumulative: undefined, merged: false, sample: undefined };
      }
      if (!h.merged && !bins) continue;
      h.interval = bins;
      if (bins) addBins((h.cumulative ??= new Map<number, number>()), bins);
      h.merged = true;
      // Without new values only the interval changes (to empty): the cumulative statistics stay as they were.
      h.sample = bins || !h.sample ? histogramSample(h) : { interval: EMPTY_STATISTICS, cumulative: h.sample.cumulative };
    }
  }

  get(idx: number): number {
    const fn = this.computed.get(idx);
    return fn ? fn() : (this.values[idx] ?? 0);
  }

  /** Value by name (tests, readiness): undefined when the stat does not exist. */
  valueOf(name: string): number | undefined {
    const idx = this.byName.get(name);
    return idx === undefined ? undefined : this.get(idx);
  }

  /** `/reset_counters`: zero every counter (gauges keep their values, as in Envoy). */
  resetCounters(): void {
    // Histograms keep their values: Envoy's /reset_counters resets counters only.
    for (let i = 0; i < this.names.length; i++) if (this.names[i] !== undefined && this.kinds[i] === COUNTER) this.values[i] = 0;
  }

  /** Every live stat, sorted by name (as Envoy's /stats prints them). */
  snapshot(): StatSample[] {
    const out: StatSample[] = [];
    for (let i = 0; i < this.names.length; i++) {
      const name = this.names[i];
      if (name === undefined) continue;
      const kind = this.kinds[i];
      if (kind === HISTOGRAM || kind === DYNAMIC_HISTOGRAM) {
        const h = this.hists[i];
        const merged = h?.merged === true;
        if (kind === DYNAMIC_HISTOGRAM && !merged) continue;
        const sample: StatSample = { name, kind: HISTOGRAM, value: 0, used: merged, histogram: h?.sample ?? EMPTY_HISTOGRAM };
        const tags = this.tagged.get(i);
        out.push(tags ? { ...sample, tags } : sample);
        continue;
      }
      const fn = this.computed.get(i);
      const value = fn ? fn() : (this.values[i] ?? 0);
      const sample: StatSample = { name, kind: kind === COUNTER ? COUNTER : GAUGE, value, used: this.used[i] === 1 || value !== 0 || fn !== undefined };
      const tags = this.tagged.get(i);
      out.push(tags ? { ...sample, tags } : sample);
    }
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return out;
  }

  private grow(): void {
    const n = this.values.length * 2;
    const v = new Float64Array(n);
    v.set(this.values);
    this.values = v;
    const u = new Uint8Array(n);
    u.set(this.used);
    this.used = u;
    const k = new Uint8Array(n);
    k.set(this.kinds);
    this.kinds = k;
    const r = new Int32Array(n);
    r.set(this.refs);
    this.refs = r;
  }
}

export interface StatSample {
  name: string;
  kind: StatKind;
  value: number;
  used: boolean;
  /** Histograms: the statistics of the last flush interval and of all flushes (Envoy's ParentHistogram). */
  histogram?: HistogramSample;
  /** A stat created with explicit tags (taggedStat). */
  tags?: StatTags;
}

export interface HistogramSample {
  interval: HistogramStatistics;
  cumulative: HistogramStatistics;
}

const EMPTY_STATISTICS = computeStatistics(undefined);
const EMPTY_HISTOGRAM: HistogramSample = { interval: EMPTY_STATISTICS, cumulative: EMPTY_STATISTICS };

function histogramSample(h: HistogramState): HistogramSample {
  return { interval: computeStatistics(h.interval), cumulative: computeStatistics(h.cumulative) };
}

function isHistogramKind(kind: number | undefined): boolean {
  return kind === HISTOGRAM || kind === DYNAMIC_HISTOGRAM;
}

/**
 * A group of stats under one prefix that is acquired and released together (a cluster's, a listener's).
 * `stat('upstream_rq_total')` resolves `<prefix>upstream_rq_total` once; the index is then used per request.
 */
export class StatScope {
  private held: number[] = [];
  readonly store: StatsStore;
  readonly prefix: string;

  constructor(store: StatsStore, prefix: string) {
    this.store = store;
    this.prefix = prefix;
  }

  counter(name: string): number {
    const idx = this.store.counter(this.prefix + name);
    this.held.push(idx);
    return idx;
  }

  gauge(name: string): number {
    const idx = this.store.gauge(this.prefix + name);
    this.held.push(idx);
    return idx;
  }

  histogram(name: string): number {
    const idx = this.store.histogram(this.prefix + name);
    this.held.push(idx);
    return idx;
  }

  dynamicHistogram(name: string): number {
    const idx = this.store.dynamicHistogram(this.prefix + name);
    this.held.push(idx);
    return idx;
  }

  computedGauge(name: string, fn: () => number): number {
    const idx = this.store.computedGauge(this.prefix + name, fn);
    this.held.push(idx);
    return idx;
  }

  releaseAll(): void {
    for (const idx of this.held) this.store.release(idx);
    this.held = [];
  }
}
