// The fault filter's per-route configuration (envoy.extensions.filters.http.fault.v3.HTTPFault, as Istio
// writes it from VirtualService `fault` into a route's typed_per_filter_config), compiled once per
// RouteConfiguration: a fixed delay and/or an abort with an HTTP or gRPC status, each with its own percentage.
// The fault filter (http/fault.ts) applies it per request.
import { ConfigError, anyType, checkFields, durationMs, num, obj, strArr, type Json } from '../xds/json.ts';
import { compileFractionalPercent } from './fraction.ts';

export const FAULT_TYPE = 'envoy.extensions.filters.http.fault.v3.HTTPFault';

export interface FaultConfig {
  delayMs: number;
  delayProbability: number;
  /** HTTP status of the abort, or 0. */
  abortStatus: number;
  /** gRPC status of the abort (HTTP status 200), or -1. */
  abortGrpcStatus: number;
  abortProbability: number;
  /** max_active_faults; unlimited when absent. */
  maxActiveFaults: number;
}

/** Compiles the per-route HTTPFault (already known to carry the HTTPFault type). */
export function compileFault(v: Json, where: string): FaultConfig {
  if (anyType(v) !== FAULT_TYPE) throw new ConfigError(`${where}: expected ${FAULT_TYPE}, got ${anyType(v)}`);
  checkFields(v, where, [
    '@type',
    'delay',
    'abort',
    'max_active_faults',
    'upstream_cluster',
    'downstream_nodes',
    'headers',
    'response_rate_limit',
    'delay_percent_runtime',
    'abort_percent_runtime',
    'disable_downstream_cluster_stats',
    'filter_metadata',
  ]);
  if (v.upstream_cluster !== undefined && v.upstream_cluster !== '') throw new ConfigError(`${where}.upstream_cluster is not supported by this proxy`);
  if (strArr(v.downstream_nodes, `${where}.downstream_nodes`).length > 0) throw new ConfigError(`${where}.downstream_nodes is not supported by this proxy`);
  if (Array.isArray(v.headers) && v.headers.length > 0) throw new ConfigError(`${where}.headers is not supported by this proxy`);
  if (v.response_rate_limit !== undefined) throw new ConfigError(`${where}.response_rate_limit is not supported by this proxy`);
  const out: FaultConfig = { delayMs: 0, delayProbability: 0, abortStatus: 0, abortGrpcStatus: -1, abortProbability: 0, maxActiveFaults: Infinity };
  if (v.delay !== undefined) {
    const w = `${where}.delay`;
    const d = obj(v.delay, w);
    checkFields(d, w, ['fixed_delay', 'header_delay', 'percentage']);
    if (d.header_delay !== undefined) throw new ConfigError(`${w}.header_delay is not supported by this proxy`);
    out.delayMs = durationMs(d.fixed_delay, `${w}.fixed_delay`, 0);
    // FaultDelay.percentage: absent means 0% (the proto default numerator).
    out.delayProbability = compileFractionalPercent(d.percentage, `${w}.percentage`, 0);
  }
  if (v.abort !== undefined) {
    const w = `${where}.abort`;
    const a = obj(v.abort, w);
    checkFields(a, w, ['http_status', 'grpc_status', 'header_abort', 'percentage']);
    if (a.header_abort !== undefined) throw new ConfigError(`${w}.header_abort is not supported by this proxy`);
    if (a.http_status !== undefined) {
      out.abortStatus = num(a.http_status, `${w}.http_status`);
      // FaultAbort.http_status is validated to [200, 600).
      if (out.abortStatus < 200 || out.abortStatus >= 600) throw new ConfigError(`${w}.http_status must be in [200, 600)`);
    } else if (a.grpc_status !== undefined) {
      out.abortGrpcStatus = num(a.grpc_status, `${w}.grpc_status`);
      out.abortStatus = 200;
    } else throw new ConfigError(`${w}: needs http_status or grpc_status`);
    out.abortProbability = compileFractionalPercent(a.percentage, `${w}.percentage`, 0);
  }
  if (v.max_active_faults !== undefined) out.maxActiveFaults = num(v.max_active_faults, `${where}.max_active_faults`);
  return out;
}
