// Earliest-deadline-first scheduler (Envoy's EdfScheduler), used by weighted round robin and by least
// request when host weights differ. Each pick takes the host with the smallest deadline and re-inserts it
// with deadline += 1 / weight, so over time each host is picked in proportion to its weight.
import type { Host } from './host.ts';

export class EdfScheduler {
  private heap: Host[] = [];
  private now = 0;
  // Tie-break by insertion order so equal deadlines rotate deterministically.
  private order = new Map<Host, number>();
  private seq = 0;

  constructor(hosts: readonly Host[], weight: (h: Host) => number) {
    for (const h of hosts) this.add(h, weight(h));
  }

  get size(): number {
    return this.heap.length;
  }

  add(h: Host, w: number): void {
    h.edfDeadline = this.now + 1 / Math.max(w, 1e-9);
    this.order.set(h, this.seq++);
    this.heap.push(h);
    this.up(this.heap.length - 1);
  }

  /** Removes and returns the host with the earliest deadline; the caller re-adds it with add(). */
  pop(): Host | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    const last = this.heap.pop() as Host;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    this.now = top.edfDeadline;
    return top;
  }

  private less(a: Host, b: Host): boolean {
    if (a.edfDeadline !== b.edfDeadline) return a.edfDeadline < b.edfDeadline;
    return (this.order.get(a) ?? 0) < (this.order.get(b) ?? 0);
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i] as Host, h[p] as Host)) break;
      [h[i], h[p]] = [h[p] as Host, h[i] as Host];
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l] as Host, h[m] as Host)) m = l;
      if (r < h.length && this.less(h[r] as Host, h[m] as Host)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as Host, h[i] as Host];
      i = m;
    }
  }
}
