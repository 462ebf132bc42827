// ROUND_ROBIN: plain rotation when weights are equal (starting at a random offset, as Envoy seeds it),
// weighted rotation through an EDF schedule otherwise.
import { EdfScheduler } from './edf-scheduler.ts';
import type { Host } from './host.ts';
import { allWeightsEqual, type LoadBalancer, type Random } from './load-balancer.ts';

export class RoundRobinLoadBalancer implements LoadBalancer {
  private readonly hosts: readonly Host[];
  private readonly edf: EdfScheduler | undefined;
  private next: number;

  constructor(hosts: readonly Host[], random: Random = Math.random) {
    this.hosts = hosts;
    this.next = Math.floor(random() * Math.max(hosts.length, 1));
    this.edf = allWeightsEqual(hosts) ? undefined : new EdfScheduler(hosts, (h) => h.weight);
  }

  choose(): Host | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    if (this.edf) {
      const h = this.edf.pop();
      if (h) this.edf.add(h, h.weight);
      return h;
    }
    const h = this.hosts[this.next % n];
    this.next = (this.next + 1) % n;
    return h;
  }
}
