// The fault filter, per request, with the route's HTTPFault (compiled by router/fault-config.ts from
// VirtualService `fault`): a fixed delay and/or an abort with an HTTP or gRPC status, each with its own
// percentage. Envoy first delays (response flag DI), then decides on the abort (flag FI,
// local reply `fault filter abort`, details `fault_filter_abort`). A gRPC abort answers HTTP 200 with that
// grpc-status to gRPC clients (and a plain 200 to others, as sendLocalReply does). Header-controlled faults
// (x-envoy-fault-*) are only active with `header_abort`/`header_delay`, which Istio never configures.
import { sample } from '../router/fraction.ts';
import type { FaultConfig } from '../router/fault-config.ts';

export const FAULT_ABORT_BODY = 'fault filter abort';
export const FAULT_ABORT_DETAILS = 'fault_filter_abort';

/** Per-request decision: a delay in ms (0 = none). */
export function faultDelay(f: FaultConfig, random: () => number = Math.random): number {
  return f.delayMs > 0 && sample(f.delayProbability, random) ? f.delayMs : 0;
}

/** Per-request decision, after the delay: abort or not. */
export function faultAbort(f: FaultConfig, random: () => number = Math.random): boolean {
  return f.abortStatus > 0 && sample(f.abortProbability, random);
}
