// Envoy-style stats: counters and gauges held in typed arrays and addressed by indices that components
// resolve once per config (a cluster, a listener, an HCM), never per request. A request does
// `store.values[idx] += 1` and nothing else. Names follow Envoy (`cluster.<alt_stat_name>.upstream_rq_total`,
// `http.<stat_prefix>.downstream_rq_2xx`, ...); rendering (/stats, Prometheus) happens at scrape time.
//
// Names are reference counted like Envoy's stat scopes: a cluster that is modified keeps the same stat
// names (and values) because the new cluster acquires them before the old one releases them; a removed
// cluster's stats disappear from /stats, as they do in Envoy when the scope is destroyed.

export const COUNTER = 0;
export const GAUGE = 1;
export type StatKind = typeof COUNTER | typeof GAUGE;

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

  /** Acquires (creating if needed) a stat and returns its index. Pair with release(). */
  acquire(name: string, kind: StatKind): number {
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
    return idx;
  }

  counter(name: string): number {
    return this.acquire(name, COUNTER);
  }

  gauge(name: string): number {
    return this.acquire(name, GAUGE);
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
    for (let i = 0; i < this.names.length; i++) if (this.names[i] !== undefined && this.kinds[i] === COUNTER) this.values[i] = 0;
  }

  /** Every live stat, sorted by name (as Envoy's /stats prints them). */
  snapshot(): StatSample[] {
    const out: StatSample[] = [];
    for (let i = 0; i < this.names.length; i++) {
      const name = this.names[i];
      if (name === undefined) continue;
      const fn = this.computed.get(i);
      const value = fn ? fn() : (this.values[i] ?? 0);
      out.push({ name, kind: this.kinds[i] === COUNTER ? COUNTER : GAUGE, value, used: this.used[i] === 1 || value !== 0 || fn !== undefined });
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
