// One request to the authorization service's cluster, as Envoy's async client sends it through the cluster
// manager: the cluster's load balancer picks the host, the host's pool (HTTP/1.1, or HTTP/2 for a cluster with
// http2 options, TLS as the cluster says) carries it, the cluster's request stats and circuit breakers count it.
// The response is buffered, up to a limit: a service that answers more than that is an error, not a process
// that runs out of memory. A missing cluster, no healthy host, an open breaker, a reset, a timeout: an error.
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Cluster } from '../upstream/cluster.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { Host } from '../upstream/host.ts';
import { RQ } from '../upstream/resource-manager.ts';

/** The most of a response body the proxy keeps from an authorization service (Envoy's default buffer limit). */
const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface CallRequest {
  cluster: string;
  method: string;
  path: string;
  /** Flat [name, value, ...], lowercase; `host` is the authority. */
  headers: string[];
  body: Buffer | null;
  timeoutMs: number;
  /** HTTP/2 is required (gRPC): a cluster without it fails the call. */
  h2: boolean;
}

export type CallResult =
  { ok: true; status: number; headers: string[]; body: Buffer; trailers: Record<string, string | string[] | undefined> } | { ok: false; reason: string };

export interface PendingCall {
  cancel(): void;
}

class CallHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private status = 0;
  private headers: string[] = [];
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly cluster: Cluster;
  private readonly host: Host;
  private readonly cb: (r: CallResult) => void;

  constructor(cluster: Cluster, host: Host, timeoutMs: number, cb: (r: CallResult) => void) {
    this.cluster = cluster;
    this.host = host;
    this.cb = cb;
    if (timeoutMs > 0) {
      this.timer = setTimeout(() => {
        this.cluster.store.inc(this.cluster.stats.upstream_rq_timeout);
        this.finish(504, { ok: false, reason: 'timeout' });
      }, timeoutMs);
    }
  }

  /** Ends the call once: stats, breaker, then the caller's callback (unless cancelled). */
  finish(code: number, r: CallResult | undefined): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.host.activeRq--;
    this.cluster.resources.dec(RQ);
    this.cluster.store.dec(this.cluster.stats.upstream_rq_active);
    if (code > 0) this.cluster.chargeStatus(code);
    if (code >= 500 || code === 0) this.host.rqError++;
    else this.host.rqSuccess++;
    if (!r || !r.ok) this.controller?.abort(new Error('ext_authz call ended'));
    if (r) this.cb(r);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.done) controller.abort(new Error('ext_authz call cancelled'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
    this.headers = (controller as { rawHeaders?: string[] | null }).rawHeaders ?? [];
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.done) return;
    this.size += chunk.length;
    if (this.size > MAX_RESPONSE_BYTES) {
      this.finish(this.status, { ok: false, reason: 'response body too large' });
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.finish(this.status, { ok: true, status: this.status, headers: this.headers, body, trailers: trailers ?? {} });
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.finish(this.status || 503, { ok: false, reason: err.message || 'reset' });
  }
}

/**
 * Sends `req` to its cluster. `cb` runs exactly once, possibly before this returns (a missing cluster, no host),
 * and never after `cancel()`.
 */
export function callCluster(clusters: ClusterManager, req: CallRequest, cb: (r: CallResult) => void): PendingCall {
  const cluster = clusters.get(req.cluster);
  if (!cluster) {
    cb({ ok: false, reason: `cluster '${req.cluster}' not found` });
    return { cancel: () => undefined };
  }
  if (req.h2 && !cluster.spec.http2) {
    cb({ ok: false, reason: `cluster '${req.cluster}' has no HTTP/2 protocol options (gRPC needs them)` });
    return { cancel: () => undefined };
  }
  const th = cluster.spec.thresholds;
  if (cluster.resources.total(RQ) >= th.maxRequests) {
    cluster.store.inc(cluster.stats.upstream_rq_pending_overflow);
    cb({ ok: false, reason: 'circuit breaker open' });
    return { cancel: () => undefined };
  }
  const host = cluster.chooseHost(undefined, { headers: req.headers });
  if (!host) {
    cb({ ok: false, reason: 'no healthy upstream' });
    return { cancel: () => undefined };
  }
  host.activeRq++;
  host.rqTotal++;
  cluster.resources.inc(RQ);
  cluster.store.inc(cluster.stats.upstream_rq_total);
  cluster.store.inc(cluster.stats.upstream_rq_active);
  let cancelled = false;
  const handler = new CallHandler(cluster, host, req.timeoutMs, (r) => {
    if (!cancelled) cb(r);
  });
  try {
    cluster
      .poolFor(host, req.h2)
      .dispatch({ path: req.path, method: req.method, headers: req.headers, body: req.body ? Readable.from([req.body]) : null }, handler);
  } catch (e) {
    handler.onResponseError(undefined as unknown as Dispatcher.DispatchController, e as Error);
  }
  return {
    cancel: () => {
      cancelled = true;
      handler.finish(0, undefined);
    },
  };
}
