// Messages between the main thread and its worker threads (gateway/workers/). Config updates are applied
// in the order they are sent; every request that wants an answer carries an id the reply repeats.
import type { Update } from '../data-plane.ts';
import type { HistogramDelta, StatSample } from '../stats/store.ts';
import type { LocalNode } from '../stats/istio-metrics.ts';
import type { EjectionType } from '../upstream/outlier-detector.ts';

export interface WorkerSettings {
  index: number;
  listenHost: string | undefined;
  drainMs: number;
  /** Whether requests are logged: the lines go to the main thread, which writes the access log. */
  accessLog: boolean;
  dnsServer: string | undefined;
  localAddress: string;
  logLevel: string;
  /** Outlier-detection streaks and ejections shared by all workers (shared-counters.ts). */
  sharedCounters: SharedArrayBuffer;
  node?: LocalNode | undefined;
}

export type ToWorker =
  /** refused: LDS listener addresses another process holds (`host:port` and the bind error), not to be bound. */
  | { op: 'apply'; id: number; update: Update; refused?: [string, { code?: string; message: string }][] }
  | { op: 'stats'; id: number }
  /** A stats flush: the worker's histogram values since the last one (cleared as they are sent). */
  | { op: 'histograms'; id: number }
  | { op: 'hosts'; id: number }
  | { op: 'drain'; id: number; ms: number }
  | { op: 'reset_counters' }
  | { op: 'ejection'; cluster: string; host: string; ejected: boolean }
  | { op: 'close'; id: number };

export type FromWorker =
  | { op: 'applied'; id: number; errors: string[] }
  | { op: 'stats'; id: number; stats: StatSample[] }
  | { op: 'histograms'; id: number; deltas: HistogramDelta[] }
  | { op: 'hosts'; id: number; hosts: [string, number[]][] }
  | { op: 'done'; id: number }
  | { op: 'outlier'; cluster: string; host: string; type: EjectionType }
  /** Access log lines: `path` names an xDS-configured logger's file, none the --access-log one. */
  | { op: 'access_log'; text: string; path?: string };
