// Outlier detection (Envoy Outlier::DetectorImpl, cluster `outlier_detection`, from a DestinationRule
// `outlierDetection`): consecutive 5xx and consecutive gateway failures (502/503/504) per host. Local
// origin errors count as HTTP codes unless split_external_local_origin_errors (connect failure -> 503,
// timeout -> 504). A host reaching a threshold is ejected if fewer than max_ejection_percent of the
// cluster's hosts are ejected (else `ejections_overflow`) and the enforcing percentage says so; it stays
// out for min(base_ejection_time x backoff, max_ejection_time), checked on each `interval` tick (so it
// returns on the first tick after that time). The backoff grows by one per ejection (while
// backoff x base < max + base) and shrinks by one per tick the host spends healthy. Success-rate and
// failure-percentage ejection (Istio disables success rate) are not implemented.
//
// With several workers (--concurrency) detection is process-wide, as in Envoy: the consecutive-error
// counts of a host live in shared memory (WorkerSharing.counters) so every worker's responses count
// toward the same streak, the worker whose response completes a streak reports it, and only the main
// thread's detector (the leader) ejects, returns hosts on its interval timer and counts the ejection
// stats; the workers' detectors (followers) take its ejections (setEjected).
import { durationMs, type envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import type { StatScope, StatsStore } from '../stats/store.ts';
import type { Host } from './host.ts';
import type { WorkerSharing } from './worker-sharing.ts';

export interface OutlierConfig {
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectionPercent: number;
  consecutive5xx: number;
  enforcingConsecutive5xx: number;
  consecutiveGatewayFailure: number;
  enforcingConsecutiveGatewayFailure: number;
  splitExternalLocalOriginErrors: boolean;
  consecutiveLocalOriginFailure: number;
  enforcingConsecutiveLocalOriginFailure: number;
}

const SUCCESS_RATE = 'success-rate ejection is not implemented (Istio always sets enforcing_success_rate 0, turning it off)';
const FAILURE_PERCENTAGE = 'failure-percentage ejection is not implemented (enforcing_failure_percentage above 0 is NACKed)';

const checkOutlierDetection = fieldTable('envoy.config.cluster.v3.OutlierDetection', {
  consecutive_5xx: true,
  interval: true,
  base_ejection_time: true,
  max_ejection_percent: true,
  enforcing_consecutive_5xx: true,
  consecutive_gateway_failure: true,
  enforcing_consecutive_gateway_failure: true,
  split_external_local_origin_errors: true,
  consecutive_local_origin_failure: true,
  enforcing_consecutive_local_origin_failure: true,
  max_ejection_time: true,
  enforcing_success_rate: SUCCESS_RATE,
  success_rate_minimum_hosts: SUCCESS_RATE,
  success_rate_request_volume: SUCCESS_RATE,
  success_rate_stdev_factor: SUCCESS_RATE,
  enforcing_local_origin_success_rate: SUCCESS_RATE,
  enforcing_failure_percentage: 'accepted only as 0: failure-percentage ejection is not implemented and is NACKed when enabled',
  failure_percentage_threshold: FAILURE_PERCENTAGE,
  enforcing_failure_percentage_local_origin: FAILURE_PERCENTAGE,
  failure_percentage_minimum_hosts: FAILURE_PERCENTAGE,
  failure_percentage_request_volume: FAILURE_PERCENTAGE,
  max_ejection_time_jitter: 'ejection times are not jittered',
  successful_active_health_check_uneject_host: 'there is no active health checking',
  always_eject_one_host: 'accepted only as false: true is NACKed (not implemented)',
});

/** Parses Cluster.outlier_detection with Envoy's defaults. */
export function parseOutlierDetection(o: envoy.config.cluster.v3.OutlierDetection, where: string): OutlierConfig {
  checkOutlierDetection(o, where);
  if ((o.enforcing_failure_percentage ?? 0) > 0)
    throw new ConfigError(`${where}.enforcing_failure_percentage: failure-percentage ejection is not supported by this proxy`);
  if (o.always_eject_one_host === true) throw new ConfigError(`${where}.always_eject_one_host is not supported by this proxy`);
  const cfg: OutlierConfig = {
    intervalMs: durationMs(o.interval, 10_000),
    baseEjectionTimeMs: durationMs(o.base_ejection_time, 30_000),
    maxEjectionTimeMs: durationMs(o.max_ejection_time, 300_000),
    maxEjectionPercent: Math.min(100, o.max_ejection_percent ?? 10),
    consecutive5xx: o.consecutive_5xx ?? 5,
    enforcingConsecutive5xx: o.enforcing_consecutive_5xx ?? 100,
    consecutiveGatewayFailure: o.consecutive_gateway_failure ?? 5,
    enforcingConsecutiveGatewayFailure: o.enforcing_consecutive_gateway_failure ?? 0,
    splitExternalLocalOriginErrors: o.split_external_local_origin_errors === true,
    consecutiveLocalOriginFailure: o.consecutive_local_origin_failure ?? 5,
    enforcingConsecutiveLocalOriginFailure: o.enforcing_consecutive_local_origin_failure ?? 100,
  };
  if (cfg.maxEjectionTimeMs < cfg.baseEjectionTimeMs)
    throw new ConfigError(`${where}: outlier detector's max_ejection_time cannot be smaller than base_ejection_time`);
  return cfg;
}

/** Local-origin results (Envoy Outlier::Result). */
export const LOCAL_ORIGIN_CONNECT_FAILED = 0;
export const LOCAL_ORIGIN_TIMEOUT = 1;
const LOCAL_ORIGIN_CONNECT_SUCCESS = 2;

export type EjectionType = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure';

const F_5XX = 0;
const F_GATEWAY = 1;
const F_LOCAL = 2;
/** 1 while the leader has the host ejected (a follower's new host starts ejected if so). */
const F_EJECTED = 3;
const FIELD: Record<EjectionType, number> = { consecutive_5xx: F_5XX, consecutive_gateway_failure: F_GATEWAY, consecutive_local_origin_failure: F_LOCAL };

interface Monitor {
  /** The host's shared slot, or -1: the counts below are this thread's own. */
  slot: number;
  /** Consecutive counts by field (F_5XX, F_GATEWAY, F_LOCAL) when there is no shared slot. */
  local: [number, number, number];
  numEjections: number;
  backoff: number;
  lastEjectionMs: number;
}

const COUNTERS = [
  'ejections_enforced_total',
  'ejections_overflow',
  'ejections_total',
  'ejections_consecutive_5xx',
  'ejections_enforced_consecutive_5xx',
  'ejections_detected_consecutive_5xx',
  'ejections_enforced_consecutive_gateway_failure',
  'ejections_detected_consecutive_gateway_failure',
  'ejections_enforced_consecutive_local_origin_failure',
  'ejections_detected_consecutive_local_origin_failure',
  'ejections_enforced_success_rate',
  'ejections_detected_success_rate',
  'ejections_success_rate',
] as const;

export class OutlierDetector {
  readonly config: OutlierConfig;
  private readonly monitors = new Map<Host, Monitor>();
  private readonly store: StatsStore;
  private readonly stats: Record<(typeof COUNTERS)[number] | 'ejections_active', number>;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly sharing: WorkerSharing | undefined;
  private readonly cluster: string;
  /** Called when a host is ejected or returns (the cluster rebuilds its load balancer). */
  onChange: (h: Host) => void = () => undefined;

  constructor(
    config: OutlierConfig,
    store: StatsStore,
    scope: StatScope,
    o: { now?: () => number; random?: () => number; timers?: boolean; sharing?: WorkerSharing | undefined; cluster?: string } = {},
  ) {
    this.config = config;
    this.store = store;
    this.now = o.now ?? (() => performance.now());
    this.random = o.random ?? Math.random;
    this.sharing = o.sharing;
    this.cluster = o.cluster ?? '';
    const s = {} as Record<(typeof COUNTERS)[number] | 'ejections_active', number>;
    for (const c of COUNTERS) s[c] = scope.counter(`outlier_detection.${c}`);
    s.ejections_active = scope.gauge('outlier_detection.ejections_active');
    this.stats = s;
    if (o.timers !== false && this.leads) this.arm();
  }

  /** Decides ejections: always with one worker; with several, on the main thread only. */
  private get leads(): boolean {
    return this.sharing?.leader ?? true;
  }

  /** Adds n to a consecutive count (n = 0 reads it) and returns it. */
  private bump(m: Monitor, field: number, n: number): number {
    if (m.slot >= 0 && this.sharing) return n === 0 ? this.sharing.counters.load(m.slot, field) : this.sharing.counters.add(m.slot, field, n);
    return (m.local[field] = (m.local[field] ?? 0) + n);
  }

  private reset(m: Monitor, field: number): void {
    if (m.slot >= 0 && this.sharing) this.sharing.counters.store(m.slot, field, 0);
    else m.local[field] = 0;
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.onIntervalTimer();
      this.arm();
    }, this.config.intervalMs);
    this.timer.unref();
  }

  /** Stops the interval timer; ejected hosts leave ejections_active (a replacing cluster shares the gauge). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.leads) for (const [h] of this.monitors) if (h.outlierEjected) this.store.dec(this.stats.ejections_active);
    this.monitors.clear();
  }

  get ejectionsActive(): number {
    return this.store.values[this.stats.ejections_active] ?? 0;
  }

  /** The cluster's host set changed: new hosts get a monitor; removed ejected hosts leave ejections_active. */
  setHosts(hosts: readonly Host[]): void {
    const keep = new Set(hosts);
    for (const [h, m] of this.monitors) {
      if (keep.has(h)) continue;
      if (h.outlierEjected && this.leads) {
        this.store.dec(this.stats.ejections_active);
        if (m.slot >= 0) this.sharing?.counters.store(m.slot, F_EJECTED, 0);
      }
      // A host that comes back later starts a new streak (Envoy gives it a new monitor).
      if (this.leads) for (const f of [F_5XX, F_GATEWAY, F_LOCAL]) this.reset(m, f);
      this.monitors.delete(h);
    }
    for (const h of hosts) {
      if (this.monitors.has(h)) continue;
      const slot = this.sharing ? this.sharing.counters.slot(`${this.cluster}::${h.key}`) : -1;
      this.monitors.set(h, { slot, local: [0, 0, 0], numEjections: 0, backoff: 0, lastEjectionMs: 0 });
      if (slot < 0 || this.sharing?.counters.load(slot, F_EJECTED) !== 1) continue;
      // A worker's host that the main thread has ejected (a worker started or updated later) starts ejected.
      if (!this.leads) h.outlierEjected = true;
      // The main thread's new detector (a modified cluster) starts with no ejection, as Envoy's does: the
      // workers return the host too.
      else if (!h.outlierEjected) this.published(h, this.monitors.get(h) as Monitor, false);
    }
  }

  /** Follower: the leader ejected or returned the host (by its key). */
  setEjected(hostKey: string, ejected: boolean): void {
    for (const h of this.monitors.keys()) {
      if (h.key !== hostKey || h.outlierEjected === ejected) continue;
      h.outlierEjected = ejected;
      this.onChange(h);
    }
  }

  /** Leader: a worker's responses completed a streak on the host (by its key). */
  onReport(hostKey: string, type: EjectionType): void {
    for (const [h, m] of this.monitors) if (h.key === hostKey) this.streak(h, m, type);
  }

  /** A count reached its threshold: the leader ejects, a follower tells the leader. */
  private streak(h: Host, m: Monitor, type: EjectionType): void {
    if (this.leads) this.onConsecutiveError(h, m, type);
    else this.sharing?.report(this.cluster, h.key, type);
  }

  /** An HTTP status from the host (the router reports every upstream response, retried or not). */
  putHttpResponseCode(h: Host, code: number): void {
    const m = this.monitors.get(h);
    if (!m) return;
    const c = this.config;
    if (code >= 500 && code < 600) {
      if (code === 502 || code === 503 || code === 504) {
        if (this.bump(m, F_GATEWAY, 1) === c.consecutiveGatewayFailure) this.streak(h, m, 'consecutive_gateway_failure');
      } else this.reset(m, F_GATEWAY);
      if (this.bump(m, F_5XX, 1) === c.consecutive5xx) this.streak(h, m, 'consecutive_5xx');
    } else {
      // Only a non-zero streak is written: shared memory stays untouched on the common path.
      if (this.bump(m, F_5XX, 0) !== 0) this.reset(m, F_5XX);
      if (this.bump(m, F_GATEWAY, 0) !== 0) this.reset(m, F_GATEWAY);
    }
  }

  /** A local-origin result: connect failure, timeout, or connect success (which is not a response). */
  putResult(h: Host, result: number): void {
    const m = this.monitors.get(h);
    if (!m) return;
    if (!this.config.splitExternalLocalOriginErrors) {
      if (result === LOCAL_ORIGIN_CONNECT_FAILED) this.putHttpResponseCode(h, 503);
      else if (result === LOCAL_ORIGIN_TIMEOUT) this.putHttpResponseCode(h, 504);
      return;
    }
    if (result === LOCAL_ORIGIN_CONNECT_SUCCESS) {
      if (this.bump(m, F_LOCAL, 0) !== 0) this.reset(m, F_LOCAL);
    } else if (this.bump(m, F_LOCAL, 1) === this.config.consecutiveLocalOriginFailure) this.streak(h, m, 'consecutive_local_origin_failure');
  }

  private enforced(type: EjectionType): boolean {
    const c = this.config;
    const pct =
      type === 'consecutive_5xx'
        ? c.enforcingConsecutive5xx
        : type === 'consecutive_gateway_failure'
          ? c.enforcingConsecutiveGatewayFailure
          : c.enforcingConsecutiveLocalOriginFailure;
    if (pct <= 0) return false;
    return pct >= 100 || this.random() * 100 < pct;
  }

  private onConsecutiveError(h: Host, m: Monitor, type: EjectionType): void {
    if (h.outlierEjected) return;
    const st = this.store;
    st.inc(this.stats[`ejections_detected_${type}`]);
    this.ejectHost(h, m, type);
    if (type === 'consecutive_5xx') st.inc(this.stats.ejections_consecutive_5xx);
    this.reset(m, FIELD[type]);
  }

  private ejectHost(h: Host, m: Monitor, type: EjectionType): void {
    const st = this.store;
    const c = this.config;
    const ejectedPercent = (100 * this.ejectionsActive) / this.monitors.size;
    if (ejectedPercent >= c.maxEjectionPercent) {
      st.inc(this.stats.ejections_overflow);
      return;
    }
    if (type === 'consecutive_5xx') st.inc(this.stats.ejections_total);
    if (!this.enforced(type)) return;
    st.inc(this.stats.ejections_active);
    st.inc(this.stats.ejections_enforced_total);
    st.inc(this.stats[`ejections_enforced_${type}`]);
    m.numEjections++;
    m.lastEjectionMs = this.now();
    if (m.backoff * c.baseEjectionTimeMs < c.maxEjectionTimeMs + c.baseEjectionTimeMs) m.backoff++;
    h.outlierEjected = true;
    this.published(h, m, true);
    this.onChange(h);
  }

  /** Leader: the workers take the ejection or return. */
  private published(h: Host, m: Monitor, ejected: boolean): void {
    if (!this.sharing) return;
    if (m.slot >= 0) this.sharing.counters.store(m.slot, F_EJECTED, ejected ? 1 : 0);
    this.sharing.onEjection(this.cluster, h.key, ejected);
  }

  /** How long the host stays ejected (before the tick that returns it). */
  ejectionTimeMs(h: Host): number {
    const m = this.monitors.get(h);
    if (!m) return 0;
    return Math.min(this.config.baseEjectionTimeMs * m.backoff, this.config.maxEjectionTimeMs);
  }

  /** The interval tick: returns hosts whose ejection time is over; healthy hosts' backoff decays. */
  onIntervalTimer(): void {
    const now = this.now();
    for (const [h, m] of this.monitors) {
      if (!h.outlierEjected) {
        if (m.backoff !== 0) m.backoff--;
        continue;
      }
      if (this.ejectionTimeMs(h) <= now - m.lastEjectionMs) {
        this.store.dec(this.stats.ejections_active);
        h.outlierEjected = false;
        this.reset(m, F_5XX);
        this.reset(m, F_GATEWAY);
        this.published(h, m, false);
        this.onChange(h);
      }
    }
  }
}
