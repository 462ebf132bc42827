// RANDOM: a uniformly random eligible host (Envoy's RandomLoadBalancer ignores weights).
import type { Host } from './host.ts';
import type { LoadBalancer, Random } from './load-balancer.ts';

export class RandomLoadBalancer implements LoadBalancer {
  private readonly hosts: readonly Host[];
  private readonly random: Random;

  constructor(hosts: readonly Host[], random: Random = Math.random) {
    this.hosts = hosts;
    this.random = random;
  }

  choose(): Host | undefined {
    const n = this.hosts.length;
    return n === 0 ? undefined : this.hosts[Math.floor(this.random() * n)];
  }
}
