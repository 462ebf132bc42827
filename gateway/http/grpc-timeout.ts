// gRPC timeouts as Envoy applies them. istiod sets the route's max_grpc_timeout (0s, or the VirtualService
// timeout): a gRPC request's router timeout is then its grpc-timeout header (absent: none), less
// grpc_timeout_offset, capped at max_grpc_timeout (0: no cap); on expiry 504 `upstream request timeout`, which
// a gRPC client sees as UNAVAILABLE. A route with max_stream_duration ("new timeouts") instead limits the
// stream from its start (Envoy's refreshDurationTimeout): its grpc_timeout_header_max reads grpc-timeout the
// same way; on expiry 408 `downstream duration timeout` (gRPC: DEADLINE_EXCEEDED).

import type { StreamDurationConfig } from '../router/route-config.ts';

/** grpc-status DEADLINE_EXCEEDED: what a gRPC client gets when the stream's duration passed. */
export const GRPC_DEADLINE_EXCEEDED = 4;

/** A grpc-timeout header value (1 to 8 digits and a unit H M S m u n) in ms, rounded up; undefined when malformed. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (v === undefined || v.length < 2 || v.length > 9) return undefined;
  const digits = v.slice(0, -1);
  if (!/^\d+$/.test(digits)) return undefined;
  const n = Number(digits);
  switch (v[v.length - 1]) {
    case 'H':
      return n * 3_600_000;
    case 'M':
      return n * 60_000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return Math.ceil(n / 1000);
    case 'n':
      return Math.ceil(n / 1_000_000);
    default:
      return undefined;
  }
}

/** A gRPC request's router timeout under max_grpc_timeout (FilterUtility::finalTimeout); 0 is none. */
export function legacyGrpcTimeout(maxGrpcTimeoutMs: number, offsetMs: number, grpcTimeout: number | undefined): number {
  let t = grpcTimeout ?? 0;
  // The offset only applies when it leaves a positive timeout (0 would mean none).
  if (offsetMs > 0 && offsetMs < t) t -= offsetMs;
  if (maxGrpcTimeoutMs !== 0 && (t === 0 || t > maxGrpcTimeoutMs)) t = maxGrpcTimeoutMs;
  return t;
}

/** A duration as grpc-timeout, as Envoy's toGrpcTimeout writes it: milliseconds, a larger unit past 8 digits. */
export function formatGrpcTimeout(ms: number): string {
  let t = ms;
  for (const [unit, next] of [
    ['m', 1000],
    ['S', 60],
    ['M', 60],
  ] as const) {
    if (t <= 99_999_999) return `${t}${unit}`;
    t = Math.ceil(t / next);
  }
  return `${Math.min(t, 99_999_999)}H`;
}

/**
 * The stream's duration limit in ms from its start, undefined for none. `grpcTimeout`: the request's header value
 * (parsed). `fromHeader` says whether the grpc-timeout header set it (the upstream then gets it rewritten).
 */
export function streamDuration(c: StreamDurationConfig, grpcTimeout: number | undefined): { ms: number; fromHeader: boolean } | undefined {
  if (grpcTimeout === undefined || c.grpcTimeoutHeaderMaxMs === undefined) {
    const d = c.maxStreamDurationMs;
    return d === undefined || d === 0 ? undefined : { ms: d, fromHeader: false };
  }
  let t = grpcTimeout;
  if (c.grpcTimeoutHeaderMaxMs !== 0 && t > c.grpcTimeoutHeaderMaxMs) t = c.grpcTimeoutHeaderMaxMs;
  const off = c.grpcTimeoutHeaderOffsetMs;
  if (t !== 0 && off !== undefined) t = off < t ? t - off : 0;
  return { ms: t, fromHeader: true };
}
