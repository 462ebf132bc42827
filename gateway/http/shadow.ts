// Fire-and-forget shadow requests (Envoy ShadowWriterImpl): a copy of the upstream request sent to a
// mirror cluster; the response is read and dropped, failures are only counted. The mirror cluster's own
// stats (upstream_rq_total, upstream_rq_<code>, ...) record it, as in Envoy.
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Cluster } from '../upstream/cluster.ts';
import type { Host } from '../upstream/host.ts';
import { RQ } from '../upstream/resource-manager.ts';

class ShadowHandler implements Dispatcher.DispatchHandler {
  private readonly cluster: Cluster;
  private readonly host: Host;
  private timer: NodeJS.Timeout | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  private done = false;
  private status = 0;

  constructor(cluster: Cluster, host: Host, timeoutMs: number) {
    this.cluster = cluster;
    this.host = host;
    if (timeoutMs > 0) {
      this.timer = setTimeout(() => {
        this.cluster.store.inc(this.cluster.stats.upstream_rq_timeout);
        this.finish(504);
        this.controller?.abort(new Error('shadow request timeout'));
      }, timeoutMs);
      this.timer.unref();
    }
  }

  private finish(code: number): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.host.activeRq--;
    this.cluster.resources.dec(RQ);
    this.cluster.store.dec(this.cluster.stats.upstream_rq_active);
    this.cluster.chargeStatus(code);
    if (code >= 500) this.host.rqError++;
    else this.host.rqSuccess++;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.done) controller.abort(new Error('shadow request cancelled'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }

  onResponseData(): void {
    // Discarded.
  }

  onResponseEnd(): void {
    this.finish(this.status);
  }

  onResponseError(): void {
    this.finish(this.status || 503);
  }
}

/** Sends one shadow request to `cluster` (the caller has already chosen to mirror this request). */
export function sendShadow(
  cluster: Cluster,
  o: {
    method: string;
    path: string;
    headers: string[];
    body: Buffer | null;
    /** The request's trailers, sent after the body as on the original request (HTTP/2 upstreams only). */
    trailers?: readonly string[] | undefined;
    timeoutMs: number;
    hash?: bigint | undefined;
  },
): boolean {
  // Envoy's shadow (async client) stream has request headers but no downstream connection.
  const host = cluster.chooseHost(o.hash, { headers: o.headers });
  if (!host) return false;
  host.activeRq++;
  host.rqTotal++;
  cluster.resources.inc(RQ);
  cluster.store.inc(cluster.stats.upstream_rq_total);
  cluster.store.inc(cluster.stats.upstream_rq_active);
  const handler = new ShadowHandler(cluster, host, o.timeoutMs);
  const body = o.body ? Readable.from([o.body]) : null;
  try {
    const trailers = o.trailers;
    cluster.poolFor(host).dispatch({ path: o.path, method: o.method, headers: o.headers, body, trailers: trailers && (() => trailers) }, handler);
  } catch {
    handler.onResponseError();
  }
  return true;
}
