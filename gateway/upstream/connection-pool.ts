// The contract between the router, the cluster and a host's connection pool (H1Pool for HTTP/1.1, H2Pool for
// HTTP/2): undici's Pool dispatch contract for requests, and the connection events the cluster counts.
import type { Dispatcher } from 'undici';

/** One upstream request as the router hands it to a pool: header names lowercase, [name, value, ...]. */
export interface DispatchOptions {
  path: string;
  method: string;
  headers: string[];
  body: AsyncIterable<Buffer> | null;
}

/** Connection accounting shared by both pools: the cluster keeps per-host and cluster-wide stats from it. */
export interface PoolEvents {
  onConnect(): void;
  onDisconnect(): void;
  onConnectError(err: Error & { code?: string }): void;
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
