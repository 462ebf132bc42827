// LEAST_REQUEST (Istio's default). Equal weights: power of two choices — pick `choiceCount` hosts at
// random (with replacement) and keep the one with the fewest active requests, the first on a tie (Envoy
// LeastRequestLoadBalancer::unweightedHostPick). Unequal weights: EDF with effective weight
// weight / (active + 1)^bias, recomputed when a host is re-scheduled (Envoy's weighted path, bias 1.0).
import { EdfScheduler } from './edf-scheduler.ts';
import type { Host } from './host.ts';
import { EDS_WEIGHT, allWeightsEqual, type LoadBalancer, type Random, type WeightOf } from './load-balancer.ts';

export class LeastRequestLoadBalancer implements LoadBalancer {
  private readonly hosts: readonly Host[];
  private readonly edf: EdfScheduler | undefined;
  private readonly random: Random;
  private readonly choiceCount: number;
  private readonly bias: number;
  private readonly weightOf: WeightOf;

  constructor(hosts: readonly Host[], random: Random = Math.random, choiceCount = 2, bias = 1.0, weightOf: WeightOf = EDS_WEIGHT) {
    this.hosts = hosts;
    this.random = random;
    this.choiceCount = choiceCount;
    this.bias = bias;
    this.weightOf = weightOf;
    this.edf = allWeightsEqual(hosts, weightOf) ? undefined : new EdfScheduler(hosts, (h) => this.effectiveWeight(h));
  }

  private effectiveWeight(h: Host): number {
    const w = this.weightOf(h);
    return this.bias === 1 ? w / (h.activeRq + 1) : w / Math.pow(h.activeRq + 1, this.bias);
  }

  choose(): Host | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    if (n === 1) return this.hosts[0];
    if (this.edf) {
      const h = this.edf.pop();
      if (h) this.edf.add(h, this.effectiveWeight(h));
      return h;
    }
    let best: Host | undefined;
    for (let i = 0; i < this.choiceCount; i++) {
      const c = this.hosts[Math.floor(this.random() * n)] as Host;
      if (!best || c.activeRq < best.activeRq) best = c;
    }
    return best;
  }
}
