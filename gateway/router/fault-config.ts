// The fault filter's per-route configuration (envoy.extensions.filters.http.fault.v3.HTTPFault, as Istio
// writes it from VirtualService `fault` into a route's typed_per_filter_config), compiled once per
// RouteConfiguration: a fixed delay and/or an abort with an HTTP or gRPC status, each with its own percentage.
// The fault filter (http/fault.ts) applies it per request.
import { durationMs, unpackAny, type Any } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError, anyType } from '../xds/json.ts';
import { compileFractionalPercent } from './fraction.ts';

export const FAULT_TYPE = 'envoy.extensions.filters.http.fault.v3.HTTPFault' as const;

export interface FaultConfig {
  delayMs: number;
  delayProbability: number;
  /** HTTP status of the abort, or 0. */
  abortStatus: number;
  /** gRPC status of the abort (HTTP status 200), or -1. */
  abortGrpcStatus: number;
  abortProbability: number;
}

// Not listed, so NACKed: max_active_faults (faults are not counted against a cap here), the runtime
// overrides other than the two percentages, and upstream_cluster, downstream_nodes, headers and
// response_rate_limit, rejected below with their own messages.
const checkFault = fieldTable(FAULT_TYPE, {
  delay: true,
  abort: true,
  delay_percent_runtime: 'there is no runtime layer here: delay.percentage applies',
  abort_percent_runtime: 'there is no runtime layer here: abort.percentage applies',
  disable_downstream_cluster_stats: 'there are no per-downstream-cluster fault stats here',
  filter_metadata: 'dynamic metadata for other filters; no filter here reads it',
});
// header_delay and header_abort are rejected below with their own messages.
const checkDelay = fieldTable('envoy.extensions.filters.common.fault.v3.FaultDelay', { fixed_delay: true, percentage: true });
const checkAbort = fieldTable('envoy.extensions.filters.http.fault.v3.FaultAbort', { http_status: true, grpc_status: true, percentage: true });

/** Compiles the per-route HTTPFault (an Any that must carry the HTTPFault type). */
export function compileFault(any: Any, where: string): FaultConfig {
  if (anyType(any) !== FAULT_TYPE) throw new ConfigError(`${where}: expected ${FAULT_TYPE}, got ${anyType(any)}`);
  const v = unpackAny(any, `type.googleapis.com/${FAULT_TYPE}`);
  if (v.upstream_cluster) throw new ConfigError(`${where}.upstream_cluster is not supported by this proxy`);
  if (v.downstream_nodes?.length) throw new ConfigError(`${where}.downstream_nodes is not supported by this proxy`);
  if (v.headers?.length) throw new ConfigError(`${where}.headers is not supported by this proxy`);
  if (v.response_rate_limit !== undefined) throw new ConfigError(`${where}.response_rate_limit is not supported by this proxy`);
  checkFault(v, where);
  const out: FaultConfig = { delayMs: 0, delayProbability: 0, abortStatus: 0, abortGrpcStatus: -1, abortProbability: 0 };
  if (v.delay !== undefined) {
    const w = `${where}.delay`;
    const d = v.delay;
    if (d.header_delay !== undefined) throw new ConfigError(`${w}.header_delay is not supported by this proxy`);
    checkDelay(d, w);
    out.delayMs = durationMs(d.fixed_delay, 0);
    // FaultDelay.percentage: absent means 0% (the proto default numerator).
    out.delayProbability = compileFractionalPercent(d.percentage, `${w}.percentage`, 0);
  }
  if (v.abort !== undefined) {
    const w = `${where}.abort`;
    const a = v.abort;
    if (a.header_abort !== undefined) throw new ConfigError(`${w}.header_abort is not supported by this proxy`);
    checkAbort(a, w);
    if (a.http_status !== undefined) {
      out.abortStatus = a.http_status;
      // FaultAbort.http_status is validated to [200, 600).
      if (out.abortStatus < 200 || out.abortStatus >= 600) throw new ConfigError(`${w}.http_status must be in [200, 600)`);
    } else if (a.grpc_status !== undefined) {
      out.abortGrpcStatus = a.grpc_status;
      out.abortStatus = 200;
    } else throw new ConfigError(`${w}: needs http_status or grpc_status`);
    out.abortProbability = compileFractionalPercent(a.percentage, `${w}.percentage`, 0);
  }
  return out;
}
