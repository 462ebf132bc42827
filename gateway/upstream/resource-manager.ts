// Envoy's ResourceManager for a cluster's default priority: requests, pending requests, retries and
// connections in use, which the circuit breakers limit per cluster across the whole process. Each worker
// counts its own; with several workers the counts also go to a shared slot (gateway/workers/
// shared-counters.ts) keyed by the cluster's name, so a limit holds for all of them together, as Envoy's
// atomics do. A cluster replaced by CDS keeps the slot: requests still in flight on the old one are counted
// against the same limits until they finish.
import type { SharedCounterTable } from './worker-sharing.ts';

export const RQ = 0;
export const PENDING = 1;
export const RETRY = 2;
/** Connected upstream connections (opening ones are counted by each worker's pools). */
export const CX = 3;
export type Resource = typeof RQ | typeof PENDING | typeof RETRY | typeof CX;

export class ResourceManager {
  /** This worker's counts by resource. */
  private readonly own = new Int32Array(4);
  private readonly shared: SharedCounterTable | undefined;
  private readonly slot: number;

  constructor(cluster: string, shared?: SharedCounterTable) {
    const slot = shared ? shared.slot(`cluster::${cluster}`) : -1;
    // A full table: this worker's counts only.
    this.shared = slot >= 0 ? shared : undefined;
    this.slot = slot;
  }

  inc(r: Resource): void {
    this.own[r] = (this.own[r] ?? 0) + 1;
    this.shared?.add(this.slot, r, 1);
  }

  dec(r: Resource): void {
    this.own[r] = (this.own[r] ?? 0) - 1;
    this.shared?.add(this.slot, r, -1);
  }

  /** This worker's count. */
  local(r: Resource): number {
    return this.own[r] ?? 0;
  }

  /** The process-wide count (every worker's). */
  total(r: Resource): number {
    return this.shared ? this.shared.load(this.slot, r) : (this.own[r] ?? 0);
  }
}
