// What a worker's clusters share with the other workers (--concurrency > 1): a table of counters in shared
// memory (gateway/workers/shared-counters.ts implements it) that holds outlier-detection streaks and
// circuit-breaker resources process-wide, as Envoy's atomics do, and the outlier-detection roles (the main
// thread's detectors decide, the workers' report to them).
import type { EjectionType } from './outlier-detector.ts';

/** Counters shared by the workers, by key (gateway/workers/shared-counters.ts). */
export interface SharedCounterTable {
  slot(key: string): number;
  add(slot: number, field: number, n: number): number;
  load(slot: number, field: number): number;
  store(slot: number, field: number, v: number): void;
}

/**
 * What a worker's clusters share with the other workers (--concurrency > 1): the counter table (outlier
 * streaks, circuit-breaker resources) and the outlier-detection roles.
 */
export interface WorkerSharing {
  counters: SharedCounterTable;
  /** The main thread's detectors decide; the workers' report to them. */
  leader: boolean;
  /** Follower: a streak of `type` reached its threshold on `hostKey` of `cluster`. */
  report(cluster: string, hostKey: string, type: EjectionType): void;
  /** Leader: a host was ejected or returned. */
  onEjection(cluster: string, hostKey: string, ejected: boolean): void;
}
