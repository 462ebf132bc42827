// Outlier detection (Envoy Outlier::DetectorImpl, cluster `outlier_detection`, from a DestinationRule
// `outlierDetection`): consecutive 5xx and consecutive gateway failures (502/503/504) per host. Local
// origin errors count as HTTP codes unless split_external_local_origin_errors (connect failure -> 503,
// timeout -> 504). A host reaching a threshold is ejected if fewer than max_ejection_percent of the
// cluster's hosts are ejected (else `ejections_overflow`) and the enforcing percentage says so; it stays
// out for min(base_ejection_time x backoff, max_ejection_time), checked on each `interval` tick (so it
// returns on the first tick after that time). The backoff grows by one per ejection (while
// backoff x base < max + base) and shrinks by one per tick the host spends healthy. Success-rate and
// failure-percentage ejection (Istio disables success rate) are not implemented.
import { ConfigError, bool, checkFields, durationMs, num, obj, type Json } from '../xds/json.ts';
import type { StatScope, StatsStore } from '../stats/store.ts';
import type { Host } from './host.ts';

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

/** Parses Cluster.outlier_detection with Envoy's defaults. */
export function parseOutlierDetection(v: unknown, where: string): OutlierConfig {
  const o = obj(v, where);
  checkFields(o, where, [
    'consecutive_5xx', 'interval', 'base_ejection_time', 'max_ejection_percent', 'enforcing_consecutive_5xx',
    'enforcing_success_rate', 'success_rate_minimum_hosts', 'success_rate_request_volume', 'success_rate_stdev_factor',
    'consecutive_gateway_failure', 'enforcing_consecutive_gateway_failure', 'split_external_local_origin_errors',
    'consecutive_local_origin_failure', 'enforcing_consecutive_local_origin_failure', 'enforcing_local_origin_success_rate',
    'failure_percentage_threshold', 'enforcing_failure_percentage', 'enforcing_failure_percentage_local_origin',
    'failure_percentage_minimum_hosts', 'failure_percentage_request_volume', 'max_ejection_time', 'max_ejection_time_jitter',
    'successful_active_health_check_uneject_host', 'always_eject_one_host',
  ]);
  const wrapped = (x: unknown, f: string, d: number): number => {
    if (x === undefined) return d;
    // UInt32Value in proto3 JSON is a bare number; tolerate {value: n} too.
    if (typeof x === 'object' && x !== null) return num((x as Json).value, `${where}.${f}`, 0);
    return num(x, `${where}.${f}`, d);
  };
  if (wrapped(o.enforcing_failure_percentage, 'enforcing_failure_percentage', 0) > 0) throw new ConfigError(`${where}.enforcing_failure_percentage: failure-percentage ejection is not supported by this proxy`);
  if (bool(o.always_eject_one_host, `${where}.always_eject_one_host`)) throw new ConfigError(`${where}.always_eject_one_host is not supported by this proxy`);
  const cfg: OutlierConfig = {
    intervalMs: durationMs(o.interval, `${where}.interval`, 10_000),
    baseEjectionTimeMs: durationMs(o.base_ejection_time, `${where}.base_ejection_time`, 30_000),
    maxEjectionTimeMs: durationMs(o.max_ejection_time, `${where}.max_ejection_time`, 300_000),
    maxEjectionPercent: Math.min(100, wrapped(o.max_ejection_percent, 'max_ejection_percent', 10)),
    consecutive5xx: wrapped(o.consecutive_5xx, 'consecutive_5xx', 5),
    enforcingConsecutive5xx: wrapped(o.enforcing_consecutive_5xx, 'enforcing_consecutive_5xx', 100),
    consecutiveGatewayFailure: wrapped(o.consecutive_gateway_failure, 'consecutive_gateway_failure', 5),
    enforcingConsecutiveGatewayFailure: wrapped(o.enforcing_consecutive_gateway_failure, 'enforcing_consecutive_gateway_failure', 0),
    splitExternalLocalOriginErrors: bool(o.split_external_local_origin_errors, `${where}.split_external_local_origin_errors`),
    consecutiveLocalOriginFailure: wrapped(o.consecutive_local_origin_failure, 'consecutive_local_origin_failure', 5),
    enforcingConsecutiveLocalOriginFailure: wrapped(o.enforcing_consecutive_local_origin_failure, 'enforcing_consecutive_local_origin_failure', 100),
  };
  if (cfg.maxEjectionTimeMs < cfg.baseEjectionTimeMs) throw new ConfigError(`${where}: outlier detector's max_ejection_time cannot be smaller than base_ejection_time`);
  return cfg;
}

/** Local-origin results (Envoy Outlier::Result). */
export const LOCAL_ORIGIN_CONNECT_FAILED = 0;
export const LOCAL_ORIGIN_TIMEOUT = 1;
export const LOCAL_ORIGIN_CONNECT_SUCCESS = 2;

type EjectionType = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure';

interface Monitor {
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  consecutiveLocalOriginFailure: number;
  numEjections: number;
  backoff: number;
  lastEjectionMs: number;
}

const COUNTERS = [
  'ejections_enforced_total', 'ejections_overflow', 'ejections_total', 'ejections_consecutive_5xx',
  'ejections_enforced_consecutive_5xx', 'ejections_detected_consecutive_5xx',
  'ejections_enforced_consecutive_gateway_failure', 'ejections_detected_consecutive_gateway_failure',
  'ejections_enforced_consecutive_local_origin_failure', 'ejections_detected_consecutive_local_origin_failure',
  'ejections_enforced_success_rate', 'ejections_detected_success_rate', 'ejections_success_rate',
] as const;

export class OutlierDetector {
  readonly config: OutlierConfig;
  private readonly monitors = new Map<Host, Monitor>();
  private readonly store: StatsStore;
  private readonly stats: Record<(typeof COUNTERS)[number] | 'ejections_active', number>;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly random: () => number;
  /** Called when a host is ejected or returns (the cluster rebuilds its load balancer). */
  onChange: (h: Host) => void = () => undefined;

  constructor(config: OutlierConfig, store: StatsStore, scope: StatScope, o: { now?: () => number; random?: () => number; timers?: boolean } = {}) {
    this.config = config;
    this.store = store;
    this.now = o.now ?? (() => performance.now());
    this.random = o.random ?? Math.random;
    const s = {} as Record<(typeof COUNTERS)[number] | 'ejections_active', number>;
    for (const c of COUNTERS) s[c] = scope.counter(`outlier_detection.${c}`);
    s.ejections_active = scope.gauge('outlier_detection.ejections_active');
    this.stats = s;
    if (o.timers !== false) this.arm();
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
    for (const [h] of this.monitors) if (h.outlierEjected) this.store.dec(this.stats.ejections_active);
    this.monitors.clear();
  }

  get ejectionsActive(): number {
    return this.store.values[this.stats.ejections_active] ?? 0;
  }

  /** The cluster's host set changed: new hosts get a monitor; removed ejected hosts leave ejections_active. */
  setHosts(hosts: readonly Host[]): void {
    const keep = new Set(hosts);
    for (const [h] of this.monitors) {
      if (keep.has(h)) continue;
      if (h.outlierEjected) this.store.dec(this.stats.ejections_active);
      this.monitors.delete(h);
    }
    for (const h of hosts) {
      if (!this.monitors.has(h)) this.monitors.set(h, { consecutive5xx: 0, consecutiveGatewayFailure: 0, consecutiveLocalOriginFailure: 0, numEjections: 0, backoff: 0, lastEjectionMs: 0 });
    }
  }

  /** An HTTP status from the host (the router reports every upstream response, retried or not). */
  putHttpResponseCode(h: Host, code: number): void {
    const m = this.monitors.get(h);
    if (!m) return;
    const c = this.config;
    if (code >= 500 && code < 600) {
      if (code === 502 || code === 503 || code === 504) {
        if (++m.consecutiveGatewayFailure === c.consecutiveGatewayFailure) this.onConsecutiveError(h, m, 'consecutive_gateway_failure');
      } else m.consecutiveGatewayFailure = 0;
      if (++m.consecutive5xx === c.consecutive5xx) this.onConsecutiveError(h, m, 'consecutive_5xx');
    } else {
      m.consecutive5xx = 0;
      m.consecutiveGatewayFailure = 0;
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
    if (result === LOCAL_ORIGIN_CONNECT_SUCCESS) m.consecutiveLocalOriginFailure = 0;
    else if (++m.consecutiveLocalOriginFailure === this.config.consecutiveLocalOriginFailure) this.onConsecutiveError(h, m, 'consecutive_local_origin_failure');
  }

  private enforced(type: EjectionType): boolean {
    const c = this.config;
    const pct = type === 'consecutive_5xx' ? c.enforcingConsecutive5xx : type === 'consecutive_gateway_failure' ? c.enforcingConsecutiveGatewayFailure : c.enforcingConsecutiveLocalOriginFailure;
    if (pct <= 0) return false;
    return pct >= 100 || this.random() * 100 < pct;
  }

  private onConsecutiveError(h: Host, m: Monitor, type: EjectionType): void {
    if (h.outlierEjected) return;
    const st = this.store;
    st.inc(this.stats[`ejections_detected_${type}`]);
    this.ejectHost(h, m, type);
    if (type === 'consecutive_5xx') {
      st.inc(this.stats.ejections_consecutive_5xx);
      m.consecutive5xx = 0;
    } else if (type === 'consecutive_gateway_failure') m.consecutiveGatewayFailure = 0;
    else m.consecutiveLocalOriginFailure = 0;
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
    this.onChange(h);
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
        m.consecutive5xx = 0;
        m.consecutiveGatewayFailure = 0;
        this.onChange(h);
      }
    }
  }
}

const GRPC_TO_HTTP = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

/** Envoy Grpc::Utility::grpcToHttpStatus: how a grpc-status in response headers counts for outlier detection. */
export function grpcToHttpStatus(grpcStatus: number): number {
  return GRPC_TO_HTTP[grpcStatus] ?? 500;
}
