// Every thread's data plane as one: the main thread's (the configuration admin shows; it serves traffic only
// in in-process tests) and the worker threads' (Envoy's --concurrency). An xDS update is applied by all of
// them, workers first; drain, close, counters and stats go to all of them.
import type { Logger } from 'pino';
import type { HostStatTotals } from '../admin/clusters.ts';
import { createDataPlane, type DataPlane, type Subscriptions, type Update } from '../data-plane.ts';
import type { BindAddress, RefusedBinds } from '../listener/listener-manager.ts';
import { probeExclusiveBind } from '../listener/port-probe.ts';
import { mergeSamples } from '../stats/merge.ts';
import type { StatSample } from '../stats/store.ts';
import type { LocalNode } from '../stats/istio-metrics.ts';
import type { WorkerSharing } from '../upstream/worker-sharing.ts';
import { LISTENER_TYPE } from '../../xds/type-urls.ts';
import { SharedCounters } from './shared-counters.ts';
import { WorkerPool } from './worker-pool.ts';

export interface ProxyThreadsOptions {
  log: Logger;
  /** Worker threads serving traffic (at least one). */
  concurrency: number;
  /** In-process tests: the main thread serves as worker 0 beside concurrency-1 worker threads. */
  serveOnMainThread: boolean;
  listenHost: string | undefined;
  drainMs: number;
  accessLog: string | undefined;
  dnsServer: string | undefined;
  /** Envoy's own address for x-forwarded-for. */
  localAddress: string;
  /** The gateway's identity from its node metadata (Istio's stats). */
  node?: LocalNode | undefined;
}

/** The addresses another process holds, with the bind error, from one exclusive bind of each. */
async function probeNewBinds(addresses: BindAddress[]): Promise<RefusedBinds> {
  const refused = new Map<string, NodeJS.ErrnoException>();
  for (const a of addresses) {
    const err = await probeExclusiveBind(a.host, a.port);
    if (err) refused.set(`${a.host}:${a.port}`, err);
  }
  return refused;
}

export class ProxyThreads {
  /** The main thread's data plane: the accepted configuration admin shows. */
  readonly main: DataPlane;
  /** The worker threads; none when the main thread is the only one serving (in-process tests). */
  readonly workers: WorkerPool | undefined;
  private readonly shared: SharedCounters | undefined;
  private readonly log: Logger;
  private readonly concurrency: number;
  private sharedFullLogged = false;

  constructor(o: ProxyThreadsOptions) {
    this.log = o.log.child({ component: 'proxy' });
    this.concurrency = o.concurrency;
    // As in Envoy, worker threads 0..N-1 serve all traffic and the main thread does control (xDS, admin, stats,
    // drain), so a bug that escapes one connection's error handling costs one worker, which is replaced, never
    // the process. They share outlier-detection and circuit-breaker counts (shared-counters.ts).
    const onMain = o.serveOnMainThread;
    const threads = onMain ? o.concurrency - 1 : o.concurrency;
    const shared = threads > 0 ? new SharedCounters() : undefined;
    this.shared = shared;
    const workerSettings = {
      listenHost: o.listenHost,
      drainMs: o.drainMs,
      accessLog: o.accessLog !== undefined,
      dnsServer: o.dnsServer,
      localAddress: o.localAddress,
      logLevel: o.log.level,
      node: o.node,
    };
    const workers = shared
      ? new WorkerPool(threads, { ...workerSettings, sharedCounters: shared.buffer }, this.log, () => this.main.current(), onMain ? 1 : 0)
      : undefined;
    this.workers = workers;
    const sharing: WorkerSharing | undefined =
      shared && workers
        ? { counters: shared, leader: true, report: () => undefined, onEjection: (cluster, host, ejected) => workers.ejection(cluster, host, ejected) }
        : undefined;
    const dp = createDataPlane({
      log: o.log,
      listenHost: o.listenHost,
      drainMs: o.drainMs,
      accessLog: o.accessLog,
      dnsServer: o.dnsServer,
      localAddress: o.localAddress,
      node: o.node,
      reusePort: workers !== undefined,
      worker: onMain ? 0 : -1,
      sharing,
    });
    this.main = dp;
    if (workers) {
      workers.onOutlierReport = (cluster, host, type) => dp.clusters.get(cluster)?.outlier?.onReport(host, type);
      workers.onAccessLog = (text, path) => (path === undefined ? dp.accessLog?.writeLines(text) : dp.accessLogSinks.write(path, text));
    }
  }

  /**
   * Applies an update in the workers, then in the main thread: once admin shows an update, every worker
   * serves it, and it is ACKed only after all of them applied it. They reject exactly what the main thread
   * does. Listener addresses new to us are probed first (listener/port-probe.ts): our threads bind with
   * SO_REUSEPORT, which would let them join another process's port and split its traffic.
   */
  async apply(...update: Update): Promise<{ errors: string[]; subscriptions: Subscriptions }> {
    const workers = this.workers;
    const [typeUrl, resources] = update;
    const refused = workers && typeUrl === LISTENER_TYPE ? await probeNewBinds(this.main.listeners.newBindAddresses(resources)) : undefined;
    const workerErrors = workers ? await workers.apply(update, refused) : [];
    const { errors, subscriptions } = await this.main.apply(update, refused);
    for (const e of workerErrors) if (!errors.includes(e)) errors.push(e);
    if (this.shared?.full && !this.sharedFullLogged) {
      this.sharedFullLogged = true;
      this.log.warn(
        { concurrency: this.concurrency },
        "the workers' shared counter table is full: outlier detection and circuit breakers of clusters and hosts added from now on count per worker; restart the proxy to start a new table",
      );
    }
    return { errors, subscriptions };
  }

  /** Every stat, process-wide (all threads), sorted by name. */
  async stats(): Promise<StatSample[]> {
    return mergeSamples(this.main.store.snapshot(), this.workers ? await this.workers.stats() : []);
  }

  /**
   * A stats flush (Envoy's stats_flush_interval): every thread's histogram values since the last flush become
   * the histograms' interval and are added to their cumulative values, which /stats and Prometheus show.
   */
  async flushHistograms(): Promise<void> {
    const deltas = this.workers ? await this.workers.histograms() : [];
    this.main.store.mergeHistograms(deltas);
  }

  /** Host stats of the worker threads (added to the main thread's clusters' own). */
  async hostStats(): Promise<HostStatTotals> {
    return this.workers ? this.workers.hostStats() : new Map();
  }

  resetCounters(): void {
    this.main.store.resetCounters();
    this.workers?.resetCounters();
  }

  /** Every thread's listeners drain for `ms` (0: stop accepting now). */
  async drain(ms: number): Promise<void> {
    await Promise.all([this.main.listeners.drainAll(ms), this.workers?.drain(ms)]);
  }

  async close(): Promise<void> {
    await this.workers?.close();
    this.main.close();
  }
}
