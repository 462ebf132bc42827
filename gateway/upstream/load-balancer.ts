// The load-balancer contract: built for one set of eligible hosts (rebuilt when membership or health
// changes), `choose()` per request. `random` returns a float in [0, 1) and is injectable for tests.
import type { Host } from './host.ts';

export type Random = () => number;

export interface LoadBalancer {
  /** `hash`: the request's consistent-hash key (RING_HASH / MAGLEV); other balancers ignore it. */
  choose(hash?: bigint): Host | undefined;
}

/** The weight a balancer uses for a host (the EDS weight, or a slow-start scaled one). */
export type WeightOf = (h: Host) => number;

export const EDS_WEIGHT: WeightOf = (h) => h.weight;

export function allWeightsEqual(hosts: readonly Host[], weightOf: WeightOf = EDS_WEIGHT): boolean {
  const w = hosts[0] ? weightOf(hosts[0]) : undefined;
  for (const h of hosts) if (weightOf(h) !== w) return false;
  return true;
}
