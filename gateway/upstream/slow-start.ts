// Slow start (Cluster round_robin_lb_config / least_request_lb_config slow_start_config, from a
// DestinationRule `warmup` or `warmupDurationSecs`): a host that joined the cluster less than
// slow_start_window ago gets its weight scaled by max(min_weight_percent, time_factor ^ (1 / aggression)),
// time_factor = max(1 ms, age) / window (Envoy EdfLoadBalancerBase::applySlowStartFactor). Hosts present
// when the cluster is built are all equally new, so only hosts added later ramp up relative to the others.
import { durationMs, type envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';

export interface SlowStartConfig {
  windowMs: number;
  aggression: number;
  /** Fraction (0..1) of the weight a host gets at least. */
  minWeight: number;
}

const checkSlowStart = fieldTable('envoy.config.cluster.v3.Cluster.SlowStartConfig', { slow_start_window: true, aggression: true, min_weight_percent: true });
/** RuntimeDouble of a cluster's load balancer settings (slow start aggression, least-request active_request_bias). */
export const checkRuntimeDouble = fieldTable(
  'envoy.config.core.v3.RuntimeDouble',
  { default_value: true, runtime_key: 'there is no runtime layer here: default_value applies' },
  'Cluster load balancer settings',
);

export function parseSlowStart(s: envoy.config.cluster.v3.Cluster.SlowStartConfig | undefined, where: string): SlowStartConfig | undefined {
  if (s === undefined) return undefined;
  checkSlowStart(s, where);
  const windowMs = durationMs(s.slow_start_window, 0);
  let aggression = 1;
  if (s.aggression !== undefined) {
    checkRuntimeDouble(s.aggression, `${where}.aggression`);
    aggression = s.aggression.default_value ?? 1;
  }
  // Envoy falls back to 1.0 for an aggression that is not positive.
  if (!(aggression > 0)) aggression = 1;
  let minWeight = 0.1;
  if (s.min_weight_percent !== undefined) {
    const pct = s.min_weight_percent.value ?? 0;
    if (pct < 0 || pct > 100) throw new ConfigError(`${where}.min_weight_percent must be in [0, 100]`);
    minWeight = pct / 100;
  }
  return windowMs > 0 ? { windowMs, aggression, minWeight } : undefined;
}

/** The weight the balancer uses for a host of `weight` that joined `ageMs` ago. */
export function slowStartWeight(weight: number, ageMs: number, c: SlowStartConfig): number {
  if (ageMs >= c.windowMs) return weight;
  const timeFactor = Math.max(1, ageMs) / c.windowMs;
  const f = c.aggression === 1 ? timeFactor : Math.pow(timeFactor, 1 / c.aggression);
  return weight * Math.max(f, c.minWeight);
}
