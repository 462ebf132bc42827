// The contract between the router, the cluster and a host's connection pool (H1Pool for HTTP/1.1, H2Pool for
// HTTP/2): undici's Pool dispatch contract for requests, and the connection events the cluster counts.
import type { Dispatcher } from 'undici';

/** One upstream request as the router hands it to a pool: header names lowercase, [name, value, ...]. */
export interface DispatchOptions {
  path: string;
  method: string;
  headers: string[];
  body: AsyncIterable<Buffer> | null;
  /**
   * The request's trailers (flat), read once the body has been sent; absent when the request cannot have any.
   * Only the HTTP/2 pool sends them: Envoy's HTTP/1 encoder drops trailers without enable_trailers, which istiod
   * never sets on a cluster.
   */
  trailers?: (() => readonly string[] | undefined) | undefined;
}

/**
 * Connection accounting shared by both pools: the cluster keeps per-host and cluster-wide stats from it.
 * `startedAt` (performance.now() when the connection was begun) times upstream_cx_connect_ms and _length_ms.
 */
export interface PoolEvents {
  onConnect(startedAt?: number): void;
  onDisconnect(startedAt?: number): void;
  onConnectError(err: Error & { code?: string }, startedAt?: number): void;
  /** A connection reached max_connection_duration and drains (upstream_cx_max_duration_reached). */
  onMaxDurationReached?(): void;
}

/** The router's side of one request: undici's handler, and the interim answer undici's contract has no callback for. */
export interface UpstreamHandler extends Dispatcher.DispatchHandler {
  /**
   * The upstream answered `100 Continue` before its final response (Envoy's decode1xxHeaders); `headers` as
   * received, flat. Other 1xx answers (102, 103) are dropped by the pools, as Envoy's codec drops them.
   */
  onResponseContinue?(controller: Dispatcher.DispatchController, headers: string[]): void;
}

/** What the router needs from a connection pool. */
export interface UpstreamPool {
  dispatch(opts: DispatchOptions, handler: UpstreamHandler): boolean;
}
