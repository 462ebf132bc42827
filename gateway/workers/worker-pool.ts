// The worker threads that serve traffic (Envoy's --concurrency; the main thread does control: xDS, admin,
// stats, drain). Each xDS update is applied by every worker before the main thread and before the ACK, so
// the control plane sees one proxy. A worker that dies (a bug that escaped a connection's error handling,
// out of memory) is replaced and given the configuration the main thread has accepted; the process and the
// other workers keep serving.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { HostStatTotals } from '../admin/clusters.ts';
import type { Update } from '../data-plane.ts';
import type { RefusedBinds } from '../listener/listener-manager.ts';
import type { HistogramDelta, StatSample } from '../stats/store.ts';
import type { EjectionType } from '../upstream/outlier-detector.ts';
import type { FromWorker, ToWorker, WorkerSettings } from './protocol.ts';

/** How long admin waits for a busy worker's stats before answering without them. */
const QUERY_TIMEOUT_MS = 2000;

interface Slot {
  worker: Worker;
  pending: Map<number, (m: FromWorker | undefined) => void>;
  started: number;
  /** Exited; its replacement may be waiting out a back-off. */
  dead: boolean;
  /** Replacements in a row that died young (back-off exponent). */
  crashes: number;
}

/**
 * The young generation a worker may use: three times the main thread's --max-semi-space-size when it has
 * one (V8's young generation is two semi-spaces and a large-object space of the same size), so every
 * thread's garbage is collected alike; otherwise V8's default.
 */
function youngGenerationMb(): number | undefined {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  let mb: number | undefined;
  for (const f of flags) {
    const m = /^--max-semi-space-size=(\d+)$/.exec(f);
    if (m) mb = 3 * Number(m[1]);
  }
  return mb;
}

/** A worker that dies within this long after it started counts as crashing (its replacement waits). */
const YOUNG_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closing = false;
  private readonly settings: Omit<WorkerSettings, 'index'>;
  private readonly log: Logger;
  /** A worker's responses completed an outlier-detection streak (the main thread's detector decides). */
  onOutlierReport: (cluster: string, host: string, type: EjectionType) => void = () => undefined;
  /** Access log lines from a worker (the main thread writes them). */
  onAccessLog: (text: string, path: string | undefined) => void = () => undefined;

  /** The configuration a replacement worker is given (the main thread's accepted one). */
  private readonly current: () => Update[];

  /** Workers are numbered from `first` (0; 1 when the main thread serves as worker 0). */
  private readonly first: number;

  constructor(count: number, settings: Omit<WorkerSettings, 'index'>, log: Logger, current: () => Update[], first = 1) {
    this.settings = settings;
    this.log = log;
    this.current = current;
    this.first = first;
    for (let i = 0; i < count; i++) this.slots.push(this.spawn(first + i));
  }

  private spawn(index: number, crashes = 0): Slot {
    const young = youngGenerationMb();
    const worker = new Worker(new URL('./worker.ts', import.meta.url), {
      workerData: { ...this.settings, index } satisfies WorkerSettings,
      ...(young !== undefined ? { resourceLimits: { maxYoungGenerationSizeMb: young } } : {}),
    });
    const slot: Slot = { worker, pending: new Map(), started: Date.now(), dead: false, crashes };
    worker.on('message', (m: FromWorker) => {
      if (m.op === 'outlier') return this.onOutlierReport(m.cluster, m.host, m.type);
      if (m.op === 'access_log') return this.onAccessLog(m.text, m.path);
      const done = slot.pending.get(m.id);
      slot.pending.delete(m.id);
      done?.(m);
    });
    worker.on('error', (e: Error) => this.log.error({ worker: index, err: e.message, stack: e.stack }, 'proxy worker failed'));
    worker.on('exit', (code) => {
      slot.dead = true;
      for (const done of slot.pending.values()) done(undefined);
      slot.pending.clear();
      if (this.closing) return;
      // A worker that keeps dying at start (a bug, no memory) is restarted ever more slowly, not in a loop.
      const diedYoung = Date.now() - slot.started < YOUNG_MS;
      const delayMs = diedYoung ? Math.min(MAX_BACKOFF_MS, 500 * 2 ** slot.crashes) : 0;
      this.log.error({ worker: index, code, restartInMs: delayMs }, 'proxy worker exited; a new one starts with the current configuration');
      setTimeout(() => {
        if (this.closing) return;
        const fresh = this.spawn(index, diedYoung ? slot.crashes + 1 : 0);
        this.slots[index - this.first] = fresh;
        this.replay(fresh);
      }, delayMs).unref();
    });
    return slot;
  }

  private request(slot: Slot, m: ToWorker & { id: number }, timeoutMs?: number): Promise<FromWorker | undefined> {
    return new Promise((resolve) => {
      if (slot.dead) return resolve(undefined);
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => (slot.pending.delete(m.id), resolve(undefined)), timeoutMs);
      slot.pending.set(m.id, (r) => {
        if (timer) clearTimeout(timer);
        resolve(r);
      });
      slot.worker.postMessage(m);
    });
  }

  private replay(slot: Slot): void {
    for (const u of this.current()) void this.request(slot, { op: 'apply', id: this.nextId++, update: u });
  }

  /** Applies an update in every worker; resolves with their errors (deduplicated). */
  async apply(update: Update, refused?: RefusedBinds): Promise<string[]> {
    const r =
      refused && refused.size > 0
        ? {
            refused: [...refused].map(([k, e]): [string, { code?: string; message: string }] => [
              k,
              { ...(e.code !== undefined ? { code: e.code } : {}), message: e.message },
            ]),
          }
        : {};
    const replies = await Promise.all(this.slots.map((slot) => this.request(slot, { op: 'apply', id: this.nextId++, update, ...r })));
    const errors = new Set<string>();
    for (const r of replies) if (r?.op === 'applied') for (const e of r.errors) errors.add(e);
    return [...errors];
  }

  /** Each worker's histogram values since the last stats flush; a worker that does not answer in time is left out. */
  async histograms(): Promise<HistogramDelta[][]> {
    const replies = await Promise.all(this.slots.map((slot) => this.request(slot, { op: 'histograms', id: this.nextId++ }, QUERY_TIMEOUT_MS)));
    return replies.flatMap((r) => (r?.op === 'histograms' ? [r.deltas] : []));
  }

  /** Each worker's share of the stats (see stats/merge.ts); a worker that does not answer in time is left out. */
  async stats(): Promise<StatSample[][]> {
    const replies = await Promise.all(this.slots.map((slot) => this.request(slot, { op: 'stats', id: this.nextId++ }, QUERY_TIMEOUT_MS)));
    return replies.flatMap((r) => (r?.op === 'stats' ? [r.stats] : []));
  }

  async hostStats(): Promise<HostStatTotals> {
    const replies = await Promise.all(this.slots.map((slot) => this.request(slot, { op: 'hosts', id: this.nextId++ }, QUERY_TIMEOUT_MS)));
    const totals: HostStatTotals = new Map();
    for (const r of replies) {
      if (r?.op !== 'hosts') continue;
      for (const [key, values] of r.hosts) {
        const cur = totals.get(key);
        if (!cur) totals.set(key, [...values]);
        else for (let i = 0; i < values.length; i++) cur[i] = (cur[i] ?? 0) + (values[i] ?? 0);
      }
    }
    return totals;
  }

  /** The main thread ejected or returned a host: every worker's load balancer follows. */
  ejection(cluster: string, host: string, ejected: boolean): void {
    for (const slot of this.slots) if (!slot.dead) slot.worker.postMessage({ op: 'ejection', cluster, host, ejected } satisfies ToWorker);
  }

  resetCounters(): void {
    for (const slot of this.slots) if (!slot.dead) slot.worker.postMessage({ op: 'reset_counters' } satisfies ToWorker);
  }

  async drain(ms: number): Promise<void> {
    await Promise.all(this.slots.map((slot) => this.request(slot, { op: 'drain', id: this.nextId++, ms })));
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((slot) => this.request(slot, { op: 'close', id: this.nextId++ }, QUERY_TIMEOUT_MS)));
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }
}
