// The sampling decision Envoy's HCM takes for every request when tracing is configured
// (ConnectionManagerUtility::mutateTracingRequestHeader with the UUID request id extension): the decision is packed
// into the x-request-id UUID's version nibble (position 14), which the upstream sees too.
import type { TracingConfig } from './config.ts';

/** Tracing::Reason. */
export const NOT_TRACEABLE = 0;
export const HEALTH_CHECK = 1;
export const SAMPLING = 2;
export const SERVICE_FORCED = 3;
export const CLIENT_FORCED = 4;

// The UUID extension's trace reason characters (version nibble): 4 is a plain v4 UUID.
const NO_TRACE = 0x34; // '4'
const TRACE_SAMPLED = 0x39; // '9'
const TRACE_FORCED = 0x61; // 'a'
const TRACE_CLIENT = 0x62; // 'b'

/** UUIDRequestIDExtension::getTraceReason. */
function traceReason(rid: string): number {
  if (rid.length !== 36) return NOT_TRACEABLE;
  switch (rid.charCodeAt(14)) {
    case TRACE_SAMPLED:
      return SAMPLING;
    case TRACE_FORCED:
      return SERVICE_FORCED;
    case TRACE_CLIENT:
      return CLIENT_FORCED;
    default:
      return NOT_TRACEABLE;
  }
}

const REASON_CHAR = [NO_TRACE, NO_TRACE, TRACE_SAMPLED, TRACE_FORCED, TRACE_CLIENT];

/** UUIDRequestIDExtension::setTraceReason: the UUID with its version nibble replaced (unchanged if not a UUID). */
export function withTraceReason(rid: string, reason: number): string {
  if (rid.length !== 36) return rid;
  const c = REASON_CHAR[reason] ?? NO_TRACE;
  return rid.charCodeAt(14) === c ? rid : rid.slice(0, 14) + String.fromCharCode(c) + rid.slice(15);
}

/** UUIDRequestIDExtension::getInteger: the first 8 hex digits, or -1 when they are not hex (no string is made). */
function ridInteger(rid: string): number {
  if (rid.length !== 36) return -1;
  let n = 0;
  for (let i = 0; i < 8; i++) {
    const c = rid.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

/**
 * mutateTracingRequestHeader: the trace reason of this request. Without use_request_id_for_trace_sampling the
 * decision is left to the tracer (Sampling). `random` is a source of uniform numbers in [0, 1).
 */
export function traceDecision(c: TracingConfig, requestId: string, clientTraceId: boolean, forceTrace: boolean, random: () => number): number {
  if (!c.useRequestIdForTraceSampling) return SAMPLING;
  const n = ridInteger(requestId);
  if (n < 0) return NOT_TRACEABLE;
  const result = n % 10000;
  let reason = traceReason(requestId);
  if (reason === NOT_TRACEABLE) {
    // featureEnabled("tracing.client_enabled", client_sampling): a fresh random number out of 100.
    if (clientTraceId && Math.floor(random() * 100) < c.clientSampling) reason = CLIENT_FORCED;
    else if (forceTrace) reason = SERVICE_FORCED;
    else if (result < c.randomSampling) reason = SAMPLING;
  }
  if (reason !== NOT_TRACEABLE && !(result % 100 < c.overallSampling)) reason = NOT_TRACEABLE;
  return reason;
}

/** TracerUtility::shouldTraceRequest (no health check filter at a gateway). */
export function isTraced(reason: number): boolean {
  return reason === SAMPLING || reason === SERVICE_FORCED || reason === CLIENT_FORCED;
}
