// ROUND_ROBIN: plain rotation when weights are equal (starting at a random offset, as Envoy seeds it),
// weighted rotation through an EDF schedule otherwise.
import { EdfScheduler } from './edf-scheduler.ts';
import type { Host } from './host.ts';
import { EDS_WEIGHT, allWeightsEqual, type LoadBalancer, type Random, type WeightOf } from './load-balancer.ts';

export class RoundRobinLoadBalancer implements LoadBalancer {
  private readonly hosts: readonly Host[];
  private readonly edf: EdfScheduler | undefined;
  private next: number;
  private readonly weightOf: WeightOf;

  constructor(hosts: readonly Host[], random: Random = Math.random, weightOf: WeightOf = EDS_WEIGHT) {
    this.hosts = hosts;
    this.next = Math.floor(random() * Math.max(hosts.length, 1));
    this.edf = allWeightsEqual(hosts, weightOf) ? undefined : new EdfScheduler(hosts, weightOf);
    this.weightOf = weightOf;
  }

  choose(): Host | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    if (this.edf) {
      const h = this.edf.pop();
      if (h) this.edf.add(h, this.weightOf(h));
      return h;
    }
    const h = this.hosts[this.next % n];
    this.next = (this.next + 1) % n;
    return h;
  }
}
