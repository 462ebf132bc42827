// config.route.v3.RetryPolicy compiled to flags (Envoy RetryStateImpl / RetryPolicyImpl semantics).
import { durationMs, int64, unpackAny, type envoy } from '../../xds/envoy.ts';
import { PREVIOUS_PRIORITIES_TYPE } from '../../xds/type-urls.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError, anyType } from '../xds/json.ts';

const RETRY_5XX = 1;
const RETRY_GATEWAY_ERROR = 2;
const RETRY_RESET = 4;
const RETRY_CONNECT_FAILURE = 8;
const RETRY_RETRIABLE_4XX = 16;
const RETRY_REFUSED_STREAM = 32;
const RETRY_RETRIABLE_STATUS_CODES = 64;
const RETRY_HTTP3_POST_CONNECT_FAILURE = 128;
const RETRY_ENVOY_RATE_LIMITED = 256;

const HTTP_ON: Record<string, number> = {
  '5xx': RETRY_5XX,
  'gateway-error': RETRY_GATEWAY_ERROR,
  reset: RETRY_RESET,
  'reset-before-request': RETRY_RESET,
  'connect-failure': RETRY_CONNECT_FAILURE,
  'retriable-4xx': RETRY_RETRIABLE_4XX,
  'refused-stream': RETRY_REFUSED_STREAM,
  'retriable-status-codes': RETRY_RETRIABLE_STATUS_CODES,
  'http3-post-connect-failure': RETRY_HTTP3_POST_CONNECT_FAILURE,
  'envoy-ratelimited': RETRY_ENVOY_RATE_LIMITED,
};

// gRPC retry_on values act on the grpc-status of the response headers (trailers-only answers).
const GRPC_ON: Record<string, number> = { cancelled: 1, 'deadline-exceeded': 4, internal: 13, 'resource-exhausted': 8, unavailable: 14 };

export interface RetryPolicy {
  numRetries: number;
  on: number;
  /** gRPC status codes (from response headers) that are retriable. */
  grpcOn: Set<number>;
  retriableStatusCodes: Set<number>;
  perTryTimeoutMs: number;
  baseIntervalMs: number;
  maxIntervalMs: number;
  previousHosts: boolean;
  hostSelectionMaxAttempts: number;
  /** previous_priorities update_frequency: every this many attempts, retries avoid the priorities tried; 0 = off. */
  priorityUpdateFrequency: number;
}

type EnvoyRetryPolicy = envoy.config.route.v3.RetryPolicy;

const checkRetryPolicy = fieldTable('envoy.config.route.v3.RetryPolicy', {
  retry_on: true,
  num_retries: true,
  per_try_timeout: true,
  retry_host_predicate: true,
  host_selection_retry_max_attempts: true,
  retriable_status_codes: true,
  retry_back_off: true,
  retry_priority: true,
});
const checkPriority = fieldTable('envoy.config.route.v3.RetryPolicy.RetryPriority', { name: true, typed_config: true });
const checkPreviousPriorities = fieldTable('envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', { update_frequency: true });
const checkPredicate = fieldTable('envoy.config.route.v3.RetryPolicy.RetryHostPredicate', { name: true, typed_config: true });
const checkBackOff = fieldTable('envoy.config.route.v3.RetryPolicy.RetryBackOff', { base_interval: true, max_interval: true });

export function compileRetryPolicy(p: EnvoyRetryPolicy, where: string): RetryPolicy {
  checkRetryPolicy(p, where);
  let on = 0;
  const grpcOn = new Set<number>();
  // Envoy ignores retry_on tokens it does not know; so do we.
  for (const token of (p.retry_on ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const f = HTTP_ON[token];
    if (f !== undefined) on |= f;
    const g = GRPC_ON[token];
    if (g !== undefined) grpcOn.add(g);
  }
  let previousHosts = false;
  for (const [i, pred] of (p.retry_host_predicate ?? []).entries()) {
    const w = `${where}.retry_host_predicate[${i}]`;
    checkPredicate(pred, w);
    const t = pred.typed_config === undefined ? '' : anyType(pred.typed_config);
    const name = pred.name ?? '';
    if (t === 'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' || (!t && name === 'envoy.retry_host_predicates.previous_hosts'))
      previousHosts = true;
    else throw new ConfigError(`${w}: retry host predicate '${name || t}' is not supported (only previous_hosts)`);
  }
  const priorityUpdateFrequency = p.retry_priority === undefined ? 0 : previousPriorities(p.retry_priority, `${where}.retry_priority`);
  const backOff = p.retry_back_off ?? {};
  checkBackOff(backOff, `${where}.retry_back_off`);
  const base = durationMs(backOff.base_interval, 25);
  if (base <= 0) throw new ConfigError(`${where}.retry_back_off.base_interval must be greater than zero`);
  const max = durationMs(backOff.max_interval, base * 10);
  if (max < base) throw new ConfigError(`${where}.retry_back_off.max_interval must be greater than or equal to the base_interval`);
  return {
    numRetries: p.num_retries ?? 1,
    on,
    grpcOn,
    retriableStatusCodes: new Set(p.retriable_status_codes ?? []),
    perTryTimeoutMs: durationMs(p.per_try_timeout, 0),
    baseIntervalMs: base,
    maxIntervalMs: max,
    previousHosts,
    hostSelectionMaxAttempts: int64(p.host_selection_retry_max_attempts, 1),
    priorityUpdateFrequency,
  };
}

/** retry_priority: Envoy's previous_priorities is the only one (Istio's retryRemoteLocalities); its update_frequency. */
function previousPriorities(rp: envoy.config.route.v3.RetryPolicy.RetryPriority, where: string): number {
  checkPriority(rp, where);
  const t = rp.typed_config === undefined ? '' : anyType(rp.typed_config);
  if (
    t !== 'envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig' &&
    !(t === '' && rp.name === 'envoy.retry_priorities.previous_priorities')
  )
    throw new ConfigError(`${where}: retry priority '${rp.name || t}' is not supported (only envoy.retry_priorities.previous_priorities)`);
  const cfg = rp.typed_config === undefined ? {} : unpackAny(rp.typed_config, PREVIOUS_PRIORITIES_TYPE);
  checkPreviousPriorities(cfg, `${where}.typed_config`);
  const f = cfg.update_frequency ?? 0;
  if (!(f > 0)) throw new ConfigError(`${where}.typed_config.update_frequency must be greater than 0`);
  return f;
}

/**
 * The priorities a retry avoids (Envoy's PreviousPrioritiesRetryPriority): none until `f` hosts were attempted,
 * then, each time the attempt count is a multiple of `f`, the priorities of every host attempted so far; in
 * between the last set stays. `previous` is that last set.
 */
export function excludedPriorities(
  f: number,
  attempted: readonly { priority: number }[],
  previous: ReadonlySet<number> | undefined,
): ReadonlySet<number> | undefined {
  if (f === 0 || attempted.length < f) return undefined;
  if (attempted.length % f !== 0) return previous;
  return new Set(attempted.map((h) => h.priority));
}

/** Should an upstream response with this status (and grpc-status, if any) be retried under `p`? */
export function retriableResponse(p: RetryPolicy, status: number, grpcStatus: number | undefined): boolean {
  if (p.on & RETRY_5XX && status >= 500) return true;
  if (p.on & RETRY_GATEWAY_ERROR && (status === 502 || status === 503 || status === 504)) return true;
  if (p.on & RETRY_RETRIABLE_4XX && status === 409) return true;
  if (p.on & RETRY_RETRIABLE_STATUS_CODES && p.retriableStatusCodes.has(status)) return true;
  if (grpcStatus !== undefined && p.grpcOn.has(grpcStatus)) return true;
  return false;
}

/**
 * Should a reset (no response) of this kind be retried? `connectFailure`: the TCP connect itself failed;
 * `refusedStream`: HTTP/2 REFUSED_STREAM.
 */
export function retriableReset(p: RetryPolicy, connectFailure: boolean, refusedStream = false): boolean {
  if (p.on & (RETRY_5XX | RETRY_GATEWAY_ERROR | RETRY_RESET)) return true;
  if (refusedStream && (p.on & RETRY_REFUSED_STREAM) !== 0) return true;
  return connectFailure && (p.on & RETRY_CONNECT_FAILURE) !== 0;
}

/** Fully jittered exponential back-off: retry n waits uniform in [0, min((2^n - 1) * base, max)). */
export function backOffMs(p: RetryPolicy, retryNumber: number): number {
  const ceiling = Math.min((2 ** retryNumber - 1) * p.baseIntervalMs, p.maxIntervalMs);
  return Math.floor(Math.random() * ceiling);
}
