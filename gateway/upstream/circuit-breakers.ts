// Circuit breakers at request admission (Envoy ConnPoolImplBase::newStreamImpl with the cluster's
// ResourceManager, default priority): max_requests is checked first (attached streams), then a request
// that finds an idle connection is attached at once; otherwise it must wait for a connection, which needs
// room under max_pending_requests. Both overflows answer 503 UO `x-envoy-overloaded: true` and count
// `upstream_rq_pending_overflow`. A pending request that needs a new connection while the cluster is at
// max_connections counts `upstream_cx_overflow` and waits for a connection to free up. max_retries is
// checked when a retry is scheduled (`upstream_rq_retry_overflow`). Overflow is never reported to outlier
// detection (envoyproxy/envoy#25487).
import type { Thresholds } from './cluster.ts';

export const ADMIT_ATTACH = 0;
export const ADMIT_PENDING = 1;
export const ADMIT_OVERFLOW = 2;

export interface AdmissionState {
  /** Requests attached to a connection (in flight upstream). */
  attachedRq: number;
  /** Requests waiting for a connection. */
  pendingRq: number;
  /** Open (and opening) upstream connections of the cluster. */
  connections: number;
}

export interface Admission {
  result: typeof ADMIT_ATTACH | typeof ADMIT_PENDING | typeof ADMIT_OVERFLOW;
  /** The request needs a new connection the cluster has no room for (upstream_cx_overflow). */
  cxOverflow: boolean;
}

/** The admission decision for one new upstream request; `idleConnection`: the chosen host has one ready. */
export function admit(th: Thresholds, s: AdmissionState, idleConnection: boolean): Admission {
  if (s.attachedRq >= th.maxRequests) return { result: ADMIT_OVERFLOW, cxOverflow: false };
  if (idleConnection) return { result: ADMIT_ATTACH, cxOverflow: false };
  if (s.pendingRq >= th.maxPendingRequests) return { result: ADMIT_OVERFLOW, cxOverflow: false };
  return { result: ADMIT_PENDING, cxOverflow: s.connections >= th.maxConnections };
}

/**
 * Whether one more concurrent retry is allowed: max_retries, or with a retry budget
 * max(budget_percent% of (active + pending requests), min_retry_concurrency) (Envoy RetryBudgetImpl::max).
 */
export function canRetry(th: Thresholds, activeRetries: number, activeRequests = 0, pendingRequests = 0): boolean {
  const b = th.retryBudget;
  const limit = b ? Math.max(Math.floor((b.percent / 100) * (activeRequests + pendingRequests)), b.minConcurrency) : th.maxRetries;
  return activeRetries < limit;
}

/** Body of the overflow local reply (81 bytes). */
export const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';
export const OVERFLOW_DETAILS = 'upstream_reset_before_response_started{overflow}';
